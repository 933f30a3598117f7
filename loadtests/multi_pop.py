"""Several POPs at once: users pinned round robin to every POP of ``EDGELAB_POPS``; each POP has its own cache,
warm pools and concurrency, so cold starts and misses happen per POP (rows ``@IAD``, ``@FRA``, ``@NRT``).

    EDGELAB_POPS=IAD=http://127.0.0.1:8081,FRA=http://127.0.0.1:8082,NRT=http://127.0.0.1:8083 \
        locust -f loadtests/multi_pop.py --config loadtests/locust.conf -H http://127.0.0.1:8081 -u 12
"""

import uuid

from common import EdgeUser
from locust import task


class MultiPopUser(EdgeUser):
    @task(3)
    def home(self) -> None:
        self.edge_get("/")

    @task(2)
    def page(self) -> None:
        self.edge_get("/static/about.html")

    @task
    def unique_key(self) -> None:
        self.edge_get(f"/cache/max-age/60?k={uuid.uuid4().hex}", "/cache/max-age/60?k=<unique>")
