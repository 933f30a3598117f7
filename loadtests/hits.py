"""Cache hits on one POP: a few cacheable objects requested over and over (viewer functions run on every hit).

    locust -f loadtests/hits.py --config loadtests/locust.conf -H http://127.0.0.1:8081
"""

from common import EdgeUser  # locust puts this file's folder on sys.path
from locust import task


class HitUser(EdgeUser):
    single_pop = True

    @task(3)
    def home(self) -> None:
        self.edge_get("/")

    @task
    def page(self) -> None:
        self.edge_get("/static/about.html")

    @task
    def stylesheet(self) -> None:
        self.edge_get("/static/css/site.css")
