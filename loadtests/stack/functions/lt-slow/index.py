"""Viewer-request function of the throttle scenario: holds its environment for ~20 ms, then answers itself."""

import os
import time


def handler(event, context):
    time.sleep(float(os.environ.get("LT_SLOW_MS", "20")) / 1000)
    return {"status": "200", "statusDescription": "OK",
            "headers": {"content-type": [{"key": "Content-Type", "value": "text/plain"}]},
            "body": "slow function answered\n"}
