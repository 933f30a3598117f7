"""``edgelab loadtest``: locust load tests through a running (or own) stack."""
