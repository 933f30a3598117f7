"""Layers: PublishLayerVersion / Get / List / Delete, and attaching layer versions to functions (§4.8).

A function's layers are resolved to content addresses when its configuration or code changes and stored with
the version row, so deleting a layer version later does not break functions that use it (as on AWS).

Layer order contract (for the execution side): ``FunctionSpec.layer_dirs`` lists extracted layer roots in the
function's ``Layers`` order. AWS extracts them into ``/opt`` in that order, later ones overwriting earlier
files; the equivalent search order is therefore *last layer first*: for Python put, for each layer from the
last to the first, ``<layer>/python`` and ``<layer>/python/lib/python3.X/site-packages`` on ``sys.path``, after
the function's own ``code_dir`` (``/var/task`` precedes ``/opt`` on AWS).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence

from edge.invocation.errors import InvalidParameterValueException, ResourceNotFoundException, validation_error
from edge.invocation.models import MAX_LAYERS
from edge.invocation.registry.codestore import CodeStore
from edge.invocation.registry.db import CodeRef, Database, LayerAttachment, LayerVersionRecord
from edge.invocation.registry.names import layer_arn, parse_layer_version_arn
from edge.invocation.registry.packages import PackageInfo
from edge.invocation.registry.rows import LAYER_COLUMNS, Clock, layer_from_row, timestamp

__all__ = ["LayerOps"]


class LayerOps:
    def __init__(self, db: Database, code: CodeStore, region: str, clock: Clock, changed: Callable[[], None]) -> None:
        self.db = db
        self.code = code
        self.region = region
        self.clock = clock
        self._changed = changed

    def publish(
        self, name: str, package: PackageInfo, *, description: str = "", compatible_runtimes: Sequence[str] = (),
        compatible_architectures: Sequence[str] = (), license_info: str | None = None,
    ) -> LayerVersionRecord:
        if len(compatible_runtimes) > 15:
            raise validation_error(list(compatible_runtimes), "compatibleRuntimes", "Member must have length less than or equal to 15")
        if len(description) > 256:
            raise validation_error(description, "description", "Member must have length less than or equal to 256")
        with self.db.write() as cur:
            cur.execute("INSERT OR IGNORE INTO layers(name) VALUES (?)", (name,))
            number = cur.execute("SELECT next_version FROM layers WHERE name=?", (name,)).fetchone()[0]
            cur.execute("UPDATE layers SET next_version=? WHERE name=?", (number + 1, name))
            record = LayerVersionRecord(
                name=name, version=number, description=description, compatible_runtimes=tuple(compatible_runtimes),
                compatible_architectures=tuple(compatible_architectures), license_info=license_info,
                code=CodeRef.of(package), created_date=timestamp(self.clock),
            )  # fmt: skip
            cur.execute(
                f"INSERT INTO layer_versions({LAYER_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    name, number, description, json.dumps(list(compatible_runtimes)),
                    json.dumps(list(compatible_architectures)), license_info, package.sha256_hex,
                    package.code_sha256, package.size, package.unzipped_size, record.created_date,
                ),
            )  # fmt: skip
        self._changed()
        return record

    def get(self, name: str, version: int) -> LayerVersionRecord:
        with self.db.read() as cur:
            record = self._get(cur, name, version)
        if record is None:
            raise ResourceNotFoundException("The resource you requested does not exist.")
        return record

    def get_by_arn(self, arn: str) -> LayerVersionRecord:
        ref = parse_layer_version_arn(arn, self.region)
        return self.get(ref.name, ref.version)

    def list_versions(self, name: str) -> list[LayerVersionRecord]:
        """Newest first, as AWS lists them."""
        with self.db.read() as cur:
            rows = cur.execute(
                f"SELECT {LAYER_COLUMNS} FROM layer_versions WHERE layer_name=? ORDER BY version DESC", (name,)
            ).fetchall()
        return [layer_from_row(r) for r in rows]

    def list_latest(self) -> list[LayerVersionRecord]:
        """The latest version of every layer that still has versions, by name."""
        with self.db.read() as cur:
            rows = cur.execute(
                f"SELECT {LAYER_COLUMNS} FROM layer_versions lv WHERE version = "
                "(SELECT MAX(version) FROM layer_versions WHERE layer_name = lv.layer_name) ORDER BY layer_name"
            ).fetchall()
        return [layer_from_row(r) for r in rows]

    def delete(self, name: str, version: int) -> None:
        """Idempotent, as AWS's DeleteLayerVersion."""
        with self.db.write() as cur:
            cur.execute("DELETE FROM layer_versions WHERE layer_name=? AND version=?", (name, version))
        self._changed()

    def arn(self, name: str, version: int | None = None) -> str:
        return layer_arn(name, self.region, version)

    def attachments(
        self, cur: sqlite3.Cursor, arns: Sequence[str], package: PackageInfo, existing: Sequence[LayerAttachment] = ()
    ) -> tuple[LayerAttachment, ...]:
        """Resolve a function's layer ARNs; checks count, duplicates, existence and the combined unzipped size."""
        if len(arns) > MAX_LAYERS:
            raise InvalidParameterValueException(f"Cannot reference more than {MAX_LAYERS} layers.")
        known = {a.arn: a for a in existing}
        seen: set[str] = set()
        result: list[LayerAttachment] = []
        for arn in arns:
            ref = parse_layer_version_arn(arn, self.region)
            if ref.name in seen:
                raise InvalidParameterValueException(
                    "Two different versions of the same layer are not allowed to be referenced in the same function. "
                    f"{self.arn(ref.name)}"
                )
            seen.add(ref.name)
            record = self._get(cur, ref.name, ref.version)
            if record is not None:
                result.append(
                    LayerAttachment(
                        arn=arn,
                        sha256_hex=record.code.sha256_hex,
                        size=record.code.size,
                        unzipped_size=record.code.unzipped_size,
                    )
                )
            elif arn in known:  # attached before the layer version was deleted: keeps working
                result.append(known[arn])
            else:
                raise InvalidParameterValueException(f"Layer version {arn} does not exist.")
        total = package.unzipped_size + sum(a.unzipped_size for a in result)
        if total > self.code.limits.unzipped:
            raise InvalidParameterValueException(
                f"Function code combined with layers exceeds the maximum allowed size of {self.code.limits.unzipped} "
                f"bytes. The actual size is {total} bytes."
            )
        return tuple(result)

    @staticmethod
    def _get(cur: sqlite3.Cursor, name: str, version: int) -> LayerVersionRecord | None:
        row = cur.execute(
            f"SELECT {LAYER_COLUMNS} FROM layer_versions WHERE layer_name=? AND version=?", (name, version)
        ).fetchone()
        return layer_from_row(row) if row else None
