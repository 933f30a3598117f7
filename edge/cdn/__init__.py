"""The CDN data plane: POP servers, request pipeline, cache, origin client, Lambda@Edge event contract.

Imports go one way: edge.cdn -> edge.invocation, never back.
"""
