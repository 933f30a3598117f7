"""Shaped cold starts: the realistic cold-start model and the chaos hooks of one executor (both off by default).

:class:`StartShaper` is what :class:`~edge.invocation.execution.executor.Executor` consults when its ``shaper`` is
not None (a single None check per invocation otherwise):

* before an invocation, its fault source (a POP's chaos scenario, ``edge.cdn.chaos``) may answer a
  :class:`~edge.invocation.models.Shaping`: throttle it (a THROTTLED result, as the concurrency limiter gives), or
  run it on a new environment (a forced cold start) with an extra Init delay;
* after a new environment's real Init, the delay of the realistic model (:class:`ColdStartModel`) and the fault's
  extra delay are slept (``asyncio.sleep``: the event loop keeps serving) and added to the environment's Init
  Duration, so that the REPORT line and the Server-Timing ``init=`` show the total, like AWS's; the result carries
  the parts (``InvocationResult.shaping``) so that Server-Timing can show the modelled and the real Init apart.

The model
---------
Init delay = ``(base[runtime] + per_mb * package_MB) * cpu(memory) * jitter``, where

* ``base`` is the median Init of a minimal ("hello world") function at 128 MB on x86_64;
* ``cpu(memory) = (128 / min(memory, 1769)) ** 0.25``: Lambda allocates CPU in proportion to memory, one full
  vCPU at 1,769 MB ("Configure Lambda function memory",
  https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html); more memory shortens a CPU-bound Init,
  beyond one vCPU a single-threaded Init gains nothing. The exponent (a quarter: only part of an Init is CPU
  bound; the platform's share is not) is edgelab's estimate, fitted so that 1,769 MB is about half of 128 MB;
* the package term: the code and layers are downloaded and unpacked on a cold start ("Operating Lambda:
  Performance optimization - Part 1", AWS Compute Blog, 2021-04-26,
  https://aws.amazon.com/blogs/compute/operating-lambda-performance-optimization-part-1/), and Init grows with the
  package size (A. Tanasa, "Size is (almost) all that matters for optimizing AWS Lambda cold starts", 2023-09-26,
  https://medium.com/@adtanasa/size-is-almost-all-that-matters-for-optimizing-aws-lambda-cold-starts-cad54f65cbb);
  the slope is edgelab's estimate, not a published figure;
* ``jitter``: log-normal, median 1, sigma 0.25, drawn from a generator seeded by (seed, function, version, n-th
  cold start of that version in this process): the same seed gives the same delays run after run.

Calibration (what the figures are, and where they come from):

=================  ==========  ============================================================================
runtime            base (ms)   source
=================  ==========  ============================================================================
python3.x          180         AWS Compute Blog, 2021-04-26 (above): cold starts "from under 100 ms to over 1
nodejs18.x-24.x    160         second"; third-party hello-world p50 on x86_64, 128 MB: Node.js 20/22 and
provided.*         60          Python 3.11/3.12 150-300 ms, Go (provided.al2023) 100-200 ms (hivebook.wiki,
                               "AWS Lambda: Cold Start Times by Runtime", April 2026,
                               https://hivebook.wiki/wiki/aws-lambda-cold-starts). The bases sit at the low
                               end of those ranges (a Lambda@Edge function is small); provided.* below Go's,
                               since the bootstrap's own start is real here and not modelled twice
package            8 per MB    edgelab estimate (Tanasa 2023 shows growth with size; no slope published here)
=================  ==========  ============================================================================

With it, a 128 MB Python viewer-request function's modelled Init is about 180 ms (edgelab's own fork from the
zygote takes ~5-20 ms), the order of what CloudFront viewers see, instead of edgelab's much faster process start.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from edge.invocation.models import FunctionSpec, Shaping

if TYPE_CHECKING:
    from edge.invocation.execution.environment import Environment

__all__ = ["BASE_INIT_MS", "ColdStartModel", "FaultSource", "StartShaper", "package_bytes"]

# median Init of a minimal function at 128 MB, x86_64, per runtime family (see the module docstring's table)
BASE_INIT_MS = {"python": 180.0, "nodejs": 160.0, "provided": 60.0}
PER_MB_MS = 8.0  # per MB of (unzipped) code and layers
CPU_FULL_MB = 1769  # one full vCPU
JITTER_SIGMA = 0.25


def _family(runtime: str) -> str:
    for family in BASE_INIT_MS:
        if runtime.startswith(family):
            return family
    return "python"  # the registry only lets the runtimes above run; a safe default for anything else


def package_bytes(dirs: Iterable[Path]) -> int:
    """Total size of the files under ``dirs`` (the code and layer directories); blocking: call in a thread."""
    total = 0
    for d in dirs:
        for root, _, files in os.walk(d):
            for name in files:
                try:
                    total += os.lstat(os.path.join(root, name)).st_size
                except OSError:
                    continue
    return total


@dataclass(frozen=True, slots=True)
class ColdStartModel:
    """The Init delay model (module docstring); ``seed`` makes the jitter reproducible."""

    seed: int = 0

    def median_ms(self, runtime: str, memory_mb: int, package: int) -> float:
        """The model's median Init for ``runtime`` at ``memory_mb`` with a ``package`` of that many bytes."""
        cpu = (128 / max(128, min(memory_mb, CPU_FULL_MB))) ** 0.25
        return (BASE_INIT_MS[_family(runtime)] + PER_MB_MS * package / 1_000_000) * cpu

    def jitter(self, function_name: str, version: str, n: int) -> float:
        """The jitter factor of the ``n``-th cold start (0-based) of ``function_name:version``: log-normal, median 1."""
        digest = hashlib.blake2b(f"{self.seed}\0{function_name}\0{version}\0{n}".encode(), digest_size=8).digest()
        return math.exp(random.Random(int.from_bytes(digest, "big")).gauss(0.0, JITTER_SIGMA))

    def delay_ms(self, runtime: str, memory_mb: int, package: int, function_name: str, version: str,
                 n: int) -> float:
        """The modelled Init delay of the ``n``-th cold start of that version."""
        return self.median_ms(runtime, memory_mb, package) * self.jitter(function_name, version, n)


class FaultSource(Protocol):
    """Decides per invocation whether a fault applies (``edge.cdn.chaos``'s per-POP scenario satisfies it)."""

    def shape(self, function_name: str, version: str) -> Shaping | None: ...


class StartShaper:
    """The executor's hooks (module docstring). ``model``: the realistic cold-start model (None: off);
    ``faults``: the fault source (None: no chaos). ``active`` tells whether the executor needs it at all."""

    def __init__(self, model: ColdStartModel | None = None, faults: FaultSource | None = None) -> None:
        self.model = model
        self.faults = faults
        self._starts: dict[tuple[str, str, str], int] = {}  # pool key -> cold starts modelled so far
        self._sizes: dict[tuple[str, str, str], int] = {}  # pool key -> package bytes

    @property
    def active(self) -> bool:
        return self.model is not None or self.faults is not None

    def admit(self, spec: FunctionSpec) -> Shaping | None:
        """The fault source's verdict for one invocation of ``spec`` (None: run it normally)."""
        faults = self.faults
        return None if faults is None else faults.shape(spec.function_name, spec.version)

    async def after_init(self, env: Environment, spec: FunctionSpec, verdict: Shaping | None) -> Shaping | None:
        """Sleep the modelled and the fault's extra Init delay after ``env``'s real Init, add them to its Init
        Duration, and say what was added (None: nothing was)."""
        if env.init_failure is not None or env.init_duration_ms is None:
            return verdict
        extra = verdict.extra_init_ms if verdict is not None else 0.0
        model_ms = 0.0
        if self.model is not None:
            key = spec.pool_key
            size = self._sizes.get(key)
            if size is None:
                size = self._sizes[key] = await asyncio.to_thread(package_bytes, (spec.code_dir, *spec.layer_dirs))
            n = self._starts.get(key, 0)
            self._starts[key] = n + 1
            model_ms = self.model.delay_ms(spec.runtime, spec.memory_mb, size, spec.function_name, spec.version, n)
        added = model_ms + extra
        if added <= 0.0:
            return verdict
        await asyncio.sleep(added / 1000.0)
        env.init_duration_ms += added
        if verdict is None:
            return Shaping(model_ms=model_ms)
        return Shaping(fault=verdict.fault, cold=verdict.cold, extra_init_ms=extra, model_ms=model_ms)
