"""edgelab: a local Lambda@Edge-style CDN.

Subpackages (imports go one way: ``cdn`` -> ``invocation``, ``control`` -> both; ``invocation`` imports
neither):

- ``edge.invocation``: the invocation core (Lambda semantics, worker processes); knows nothing of HTTP.
- ``edge.cdn``: the data plane (POP servers, cache, origin client, Lambda@Edge event contract).
- ``edge.control``: the control plane (Lambda-compatible REST API, admin API, CLI, dashboard).
"""

__version__ = "0.1.0"
