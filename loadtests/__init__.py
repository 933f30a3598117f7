"""edgelab load tests, run by locust in its own process (``edgelab loadtest SCENARIO`` or ``locust -f``).

Nothing here imports the ``edge`` package: locust monkey-patches the standard library with gevent, which breaks
asyncio code. The pure modules (:mod:`loadtests.classify`, :mod:`loadtests.report`) import neither locust nor
gevent, so they are unit-tested and reused without them.
"""
