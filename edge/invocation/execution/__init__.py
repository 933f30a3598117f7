"""The execution side of the core: the executor (limiter lease, then a pooled environment), the concurrency
limiter, environment pools, environments, the zygote client, logs and metrics."""
