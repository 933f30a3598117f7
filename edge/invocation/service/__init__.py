"""``LambdaService``: the per-process facade over the registry, the async event queue and the executor, assembled
from components with explicit dependencies: :mod:`.invoke_path` (synchronous invocations, prepared targets),
:mod:`.control_ops` (control-plane operations), :mod:`.async_ops` (async invocation, queues, mappings) and
:mod:`.executor_sync` (the registry change-feed consumer that keeps the executor in line)."""
