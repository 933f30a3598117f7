"""Worker-side runtime of the invocation core, plus the frame protocol shared with the core (the core-side
client of the zygote is :mod:`edge.invocation.execution.zygote_client`).

- :mod:`.protocol`  frames exchanged over the core<->worker socketpair and the core<->zygote control socket.
- :mod:`.zygote`    the fork server process: pre-imports the runtime, forks one child per execution environment,
                    reaps children and reports their exit statuses.
- :mod:`.worker`    what a forked child runs: environment setup, handler import (Init), the invoke loop.
- :mod:`.context`   the ``context`` object handed to handlers and the Lambda-format logging handler.
- :mod:`.faults`    error records (awslambdaric shapes) and traceback trimming.

Everything the worker imports is stdlib (plus orjson, hidden from user code after fork).
"""
