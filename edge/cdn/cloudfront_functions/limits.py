"""CloudFront Functions and KeyValueStore limits and fixed strings, each with its AWS source.

Quotas: AWS Developer Guide, CloudFront, ``cloudfront-limits`` ("Quotas on CloudFront Functions", "Quotas on
KeyValueStore"); restrictions: ``cloudfront-function-restrictions``; API shapes: CloudFront API Reference
2020-05-31 (``CreateFunction``, ``TestFunction``, ``CreateKeyValueStore``) and the KeyValueStore API reference
(``API_kvs_PutKey`` …) as modelled by botocore.
"""

from __future__ import annotations

import re

RUNTIME_1 = "cloudfront-js-1.0"
RUNTIME_2 = "cloudfront-js-2.0"
RUNTIMES = (RUNTIME_1, RUNTIME_2)

VIEWER_REQUEST = "viewer-request"
VIEWER_RESPONSE = "viewer-response"
EVENT_TYPES = (VIEWER_REQUEST, VIEWER_RESPONSE)

# cloudfront-limits: "Maximum size of a function: 10 KB"; the API accepts a FunctionCode blob up to 40,960 bytes
# and answers FunctionSizeLimitExceeded above the quota.
MAX_CODE_BYTES = 10 * 1024
MAX_CODE_BLOB_BYTES = 40_960
# cloudfront-limits: "Maximum memory: 2 MB".
MEMORY_BYTES = 2 * 1024 * 1024
# cloudfront-limits: functions per account.
MAX_FUNCTIONS = 100
# CreateFunction: Name pattern and length; Comment is required (FunctionConfig) and at most 128 characters.
FUNCTION_NAME_RE = re.compile(r"^[a-zA-Z0-9\-_]{1,64}$")
MAX_COMMENT = 128
# TestFunction: EventObject blob at most 40,960 bytes.
MAX_TEST_EVENT_BYTES = 40_960
# cloudfront-function-restrictions: "Function logs in CloudFront Functions are truncated at 10 KB."
MAX_LOG_BYTES = 10 * 1024

# cloudfront-function-restrictions, "Compute utilization": a number 0-100, the time the function took as a
# percentage of the maximum allowed time. AWS does not publish the maximum; third-party guides give about 1 ms.
# edgelab: 100 = COMPUTE_BUDGET_MS of CPU time in the engine; the call is stopped at HARD_TIME_LIMIT_MS.
COMPUTE_BUDGET_MS = 1.0
HARD_TIME_LIMIT_MS = 5.0

# KeyValueStore (kvs-with-functions-create / cloudfront-limits "Quotas on KeyValueStore"): key <= 512 characters,
# value <= 1 KB, total store (and import file) <= 5 MB. The data-plane model allows keys of 1-1,024 characters:
# the documented quota wins here (configurable per store service).
KVS_MAX_KEY_CHARS = 512
KVS_MAX_VALUE_BYTES = 1024
KVS_MAX_STORE_BYTES = 5 * 1024 * 1024
KVS_NAME_RE = re.compile(r"^[a-zA-Z0-9\-_]{1,64}$")
KVS_MAX_COMMENT = 128
# ListKeys MaxResults: 1-50, default 10 (botocore cloudfront-keyvaluestore model).
KVS_LIST_MAX_RESULTS = 50
KVS_LIST_DEFAULT_RESULTS = 10

# The account edgelab pretends to be (ARNs need one).
DEFAULT_ACCOUNT = "123456789012"
