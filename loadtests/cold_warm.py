"""The classic cold/warm experiment across POPs (see :mod:`loadtests.phases`): burst after a reset -> steady
warm -> idle gap longer than the idle expiry -> burst again. The shape drives the users; ``-u/-r/-t`` are ignored.

    EDGELAB_POPS=IAD=http://127.0.0.1:8081,FRA=http://127.0.0.1:8082 EDGELAB_IDLE_GAP=20 \
        locust -f loadtests/cold_warm.py --config loadtests/locust.conf -H http://127.0.0.1:8081
"""

import uuid

from common import EdgeUser, PhasedShape
from locust import task


class ColdWarmUser(EdgeUser):
    @task(3)
    def home(self) -> None:
        self.edge_get("/")

    @task
    def unique_key(self) -> None:
        self.edge_get(f"/cache/max-age/60?k={uuid.uuid4().hex}", "/cache/max-age/60?k=<unique>")


class ColdWarmShape(PhasedShape):
    pass
