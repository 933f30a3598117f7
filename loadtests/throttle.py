"""Throttling at a low reserved concurrency: ``/throttle/*`` runs a viewer-request function that sleeps 20 ms
and answers itself. ``edgelab loadtest throttle --reserved 2`` sets that function's reserved concurrency, so
more concurrent users than that get CloudFront's 503 ``LambdaLimitExceeded`` (rows ``[...|throttled@IAD]``);
those are the measured outcome here, not failures.

    locust -f loadtests/throttle.py --config loadtests/locust.conf -H http://127.0.0.1:8081 -u 12
"""

from common import EdgeUser
from locust import between, task


class ThrottleUser(EdgeUser):
    single_pop = True
    wait_time = between(0.005, 0.02)  # busy, yet bounded on a shared machine

    @task
    def slow_function(self) -> None:
        self.edge_get("/throttle/work", "/throttle/*", expect=(200, 503))
