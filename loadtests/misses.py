"""Cache misses on unique keys, one POP: every request goes to the origin (viewer-request, origin-response and
viewer-response functions run on each).

    locust -f loadtests/misses.py --config loadtests/locust.conf -H http://127.0.0.1:8081
"""

import uuid

from common import EdgeUser
from locust import task


class MissUser(EdgeUser):
    single_pop = True

    @task
    def unique_key(self) -> None:
        # the default behavior's cache policy keys on every query string: each key is new
        self.edge_get(f"/cache/max-age/60?k={uuid.uuid4().hex}", "/cache/max-age/60?k=<unique>")
