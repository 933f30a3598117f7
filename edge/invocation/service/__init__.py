"""``LambdaService``: the per-process facade over the registry, the async event queue and the executor."""
