"""Origin-request functions: ``/echo/*`` is never cached in the loadtest distribution and carries an
origin-request function, so every request runs it (cold at first, then warm) before the origin fetch.

Needs the loadtest stack (``edgelab loadtest`` starts it; by hand: ``loadtests/stack/settings.toml``).

    locust -f loadtests/origin_request.py --config loadtests/locust.conf -H http://127.0.0.1:8081
"""

import random

from common import EdgeUser
from locust import task


class OriginRequestUser(EdgeUser):
    single_pop = True

    @task
    def echo(self) -> None:
        self.edge_get(f"/echo/item-{random.randrange(1000)}", "/echo/*")
