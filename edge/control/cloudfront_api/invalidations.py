"""CreateInvalidation / GetInvalidation / ListInvalidations over the admin API's fan-out to the POPs
(:func:`edge.control.admin.api.purge`, the same purge as ``POST /edgelab/v1/invalidations`` and ``edgelab
invalidate``), with CloudFront's records (API reference: API_CreateInvalidation, API_Invalidation,
API_InvalidationBatch, https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_CreateInvalidation.html).

* Ids look like CloudFront's (``I`` and 13 upper-case letters and digits); statuses are ``InProgress`` until every
  POP has purged the paths, then ``Completed``. Purging is an in-memory operation in each POP, so CreateInvalidation
  answers ``Completed`` (CloudFront takes minutes and answers ``InProgress``: both are the documented values, and
  ``aws cloudfront wait invalidation-completed`` returns at once). A POP that could not be reached leaves the
  record ``InProgress`` and the error in the log.
* The paths follow CloudFront's rules (``/`` first, ``*`` only last; at most 3,000 per batch: ``BatchTooLarge``;
  ``Quantity`` must match the items: ``InconsistentQuantities``).
* ``CallerReference``: the same reference with the same paths returns the earlier invalidation without a new purge;
  with other paths it is ``InvalidationBatchAlreadyExists`` (API_InvalidationBatch).
* Records persist in ``<state>/cloudfront/invalidations.json``; lists are newest first, paged by ``Marker`` (the
  last Id of the previous page) and ``MaxItems``.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import os
import secrets
import string
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from edge.cdn.cloudfront_functions.api_errors import api_error
from edge.control.admin.api import MAX_INVALIDATION_PATHS, parse_invalidation_paths
from edge.control.cloudfront_api.distributions import DistributionService, now_iso

__all__ = ["InvalidationService"]

log = logging.getLogger("edgelab.control.invalidations")

Purge = Callable[[list[str]], Awaitable[Mapping[str, Any]]]  # paths -> per-POP result ({"error"}: failed)


def new_invalidation_id() -> str:
    return "I" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(13))


class InvalidationService:
    def __init__(self, state_dir: Path, distributions: DistributionService) -> None:
        self.path = state_dir / "cloudfront" / "invalidations.json"
        self.distributions = distributions
        self.purge: Purge | None = None  # wired by the control app (the admin API's fan-out)
        self._lock = asyncio.Lock()
        self._records: list[dict[str, Any]] = self._read()  # oldest first; each with its DistributionId

    def _read(self) -> list[dict[str, Any]]:
        try:
            data = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            log.error("cannot read %s (%s): the invalidation history starts empty", self.path, exc)
            return []
        return [r for r in data if isinstance(r, dict)] if isinstance(data, list) else []

    def _write(self, records: list[dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(json.dumps(records).encode())
        os.replace(tmp, self.path)

    def in_progress(self) -> int:
        dist_id = self.distributions.id
        return sum(1 for r in self._records if r["DistributionId"] == dist_id and r["Status"] == "InProgress")

    @staticmethod
    def _public(record: Mapping[str, Any]) -> dict[str, Any]:
        return {k: copy.deepcopy(v) for k, v in record.items() if k != "DistributionId"}

    async def create(self, dist_id: str, batch: dict[str, Any]) -> dict[str, Any]:
        """CreateInvalidation: the Invalidation (see the module docstring)."""
        self.distributions.check_id(dist_id)
        reference = batch.get("CallerReference")
        if not isinstance(reference, str) or not reference:
            raise api_error("InvalidArgument", "InvalidationBatch.CallerReference is required (a unique value, "
                                               "for example a timestamp).")
        paths_obj = batch.get("Paths") or {}
        items = paths_obj.get("Items") if isinstance(paths_obj, dict) else None
        if isinstance(items, list) and len(items) > MAX_INVALIDATION_PATHS:
            raise api_error("BatchTooLarge", f"{len(items)} paths: at most {MAX_INVALIDATION_PATHS} per "
                                             "invalidation; split them into several batches.")
        try:
            paths = parse_invalidation_paths({"Paths": paths_obj})
        except ValueError as exc:
            code = "InconsistentQuantities" if "Quantity" in str(exc) else "InvalidArgument"
            raise api_error(code, f"InvalidationBatch.Paths: {exc}.") from None
        async with self._lock:
            for r in self._records:
                if r["DistributionId"] == dist_id and r["InvalidationBatch"]["CallerReference"] == reference:
                    if r["InvalidationBatch"]["Paths"]["Items"] == paths:
                        return self._public(r)
                    raise api_error("InvalidationBatchAlreadyExists",
                                    f"CallerReference {reference!r} was already used by invalidation {r['Id']} with "
                                    "other paths: use a new CallerReference.")
            record = {"Id": new_invalidation_id(), "Status": "InProgress", "CreateTime": now_iso(),
                      "InvalidationBatch": {"Paths": {"Quantity": len(paths), "Items": paths},
                                            "CallerReference": reference},
                      "DistributionId": dist_id}
            self._records.append(record)
            await asyncio.to_thread(self._write, copy.deepcopy(self._records))
        results = await self.purge(paths) if self.purge is not None else {}
        failed = {pop: r for pop, r in results.items() if isinstance(r, Mapping) and "error" in r}
        if failed:
            log.error("invalidation %s (%s) not applied in %s: it stays InProgress", record["Id"], ", ".join(paths),
                      "; ".join(f"{pop}: {r['error']}" for pop, r in sorted(failed.items())))
        else:
            async with self._lock:
                record["Status"] = "Completed"
                await asyncio.to_thread(self._write, copy.deepcopy(self._records))
        return self._public(record)

    def get(self, dist_id: str, inv_id: str) -> dict[str, Any]:
        self.distributions.check_id(dist_id)
        for r in self._records:
            if r["DistributionId"] == dist_id and r["Id"] == inv_id:
                return self._public(r)
        raise api_error("NoSuchInvalidation", f"The specified invalidation does not exist: {inv_id!r} "
                                              f"(aws cloudfront list-invalidations --distribution-id {dist_id}).")

    def list_invalidations(self, dist_id: str, marker: str | None, max_items: int) -> dict[str, Any]:
        self.distributions.check_id(dist_id)
        newest_first = [r for r in reversed(self._records) if r["DistributionId"] == dist_id]
        start = 0
        if marker:
            ids = [r["Id"] for r in newest_first]
            start = ids.index(marker) + 1 if marker in ids else len(ids)
        page = newest_first[start:start + max_items]
        truncated = start + max_items < len(newest_first)
        out: dict[str, Any] = {"Marker": marker or "", "MaxItems": max_items, "IsTruncated": truncated,
                               "Quantity": len(page),
                               "Items": [{"Id": r["Id"], "CreateTime": r["CreateTime"], "Status": r["Status"]}
                                         for r in page]}
        if truncated:
            out["NextMarker"] = page[-1]["Id"]
        return out
