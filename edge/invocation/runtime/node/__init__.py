"""The Node.js runtime of the invocation core: a dependency-free shim run by ``node`` (one long-lived process per
execution environment), speaking the same frame protocol as the Python worker (:mod:`..protocol`).

Files (shipped as package data):

- ``shim.cjs``       the runtime: boots (optionally ahead of time, as a spare), receives its configuration in an
                     INIT frame, loads the handler as AWS's Node.js runtime does, serves INVOKE frames.
- ``esm_hooks.mjs``  a ``module.register`` resolve hook that retries bare ES-module specifiers from each
                     ``NODE_PATH`` directory, as Lambda does since Node.js 18 (plain Node does not).

Frames beyond the Python worker's (same encoding, :func:`..protocol.encode`/``decode``; the Python worker never
sees them):

- ``K_HELLO`` (shim -> core, once, right after start): meta ``{t, pid, v (process.version), rss (KiB)}``. A
  spare is ready when it has said hello; the core measures the boot time up to it.
- ``K_INIT`` (core -> shim, once): meta = the configuration (:func:`edge.invocation.execution.node_process.
  init_config`): ``{t, env, task_root, handler, runtime, memory_mb, tmp, tmp_quota_mb}``. The shim answers
  ``K_READY`` (meta ``{t, rss, im}``, ``im`` = the function's own Init time measured inside the shim, ms; log =
  Init output) or ``K_INIT_ERROR`` (body = ``{"errorType","errorMessage","trace"}``; the process then exits).

Then ``K_INVOKE`` / ``K_RESULT`` / ``K_ERROR`` exactly as for the Python worker (``lg``, ``pre`` and ``init``
included: the shim formats START/END/REPORT itself with :mod:`..logformat`'s texts). Error payloads have Node's
shape (``trace``, no ``requestId``). ``K_ERROR`` with ``reset`` true is followed by the process exiting on its
own (uncaught exception: 129, unhandled rejection: 128, as AWS's runtime client).
"""

from __future__ import annotations

from pathlib import Path

NODE_RUNTIME_DIR = Path(__file__).resolve().parent
SHIM = NODE_RUNTIME_DIR / "shim.cjs"
ESM_HOOKS = NODE_RUNTIME_DIR / "esm_hooks.mjs"

K_HELLO = "h"
K_INIT = "n"
