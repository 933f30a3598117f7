"""Viewer-request function cold vs warm as concurrency ramps up on one POP.

Run after a reset with a slow spawn rate (``-r 1``): each extra concurrent user can need one more environment,
so cold starts show up along the ramp, then every row turns warm.

    locust -f loadtests/viewer_request.py --config loadtests/locust.conf -H http://127.0.0.1:8081 -u 16 -r 1
"""

from common import EdgeUser
from locust import task


class ViewerRequestUser(EdgeUser):
    single_pop = True

    @task
    def cached_object(self) -> None:
        # a cache hit: the viewer-request (and viewer-response) functions are all the POP runs
        self.edge_get("/cache/max-age/3600")
