"""Row <-> record conversion and small shared helpers of the registry modules."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from edge.invocation.registry.config import FunctionConfig
from edge.invocation.registry.db import (
    AliasRecord,
    CodeRef,
    LayerAttachment,
    LayerVersionRecord,
    ProvisionedRecord,
    VersionRecord,
)

Clock = Callable[[], float]
T = TypeVar("T")

VERSION_COLUMNS = (
    "function_name, version, config, code_hex, code_sha256, code_size, unzipped_size, layer_code, "
    "revision_id, config_revision, last_modified"
)
ALIAS_COLUMNS = "function_name, name, function_version, description, weights, revision_id"
LAYER_COLUMNS = (
    "layer_name, version, description, compatible_runtimes, compatible_architectures, license_info, "
    "code_hex, code_sha256, code_size, unzipped_size, created_date"
)


def new_revision() -> str:
    return str(uuid.uuid4())


def content_revision(rec: VersionRecord) -> str:
    """Hash of everything that defines what runs (config, code, layers): equal content, equal revision.

    Used as ``$LATEST``'s pool-key revision (identical content keeps warm environments valid) and to decide
    whether PublishVersion has anything new to publish.
    """
    material = json.dumps([rec.config.to_json(), rec.code.sha256_hex, [a.sha256_hex for a in rec.layers]])
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def timestamp(clock: Clock = time.time) -> str:
    """AWS FunctionConfiguration time format: ``2020-04-10T19:06:32.563+0000``."""
    now = clock()
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
    return f"{base}.{int((now % 1) * 1000):03d}+0000"


def version_from_row(row: sqlite3.Row | tuple[Any, ...]) -> VersionRecord:
    (name, version, config, code_hex, sha, size, unzipped, layer_code, rev, config_rev, modified) = row
    return VersionRecord(
        function_name=name,
        version=version,
        config=FunctionConfig.from_json(config),
        code=CodeRef(sha256_hex=code_hex, code_sha256=sha, size=size, unzipped_size=unzipped),
        layers=tuple(LayerAttachment(*item) for item in json.loads(layer_code)),
        revision_id=rev,
        config_revision=config_rev,
        last_modified=modified,
    )


def version_values(rec: VersionRecord) -> tuple[object, ...]:
    layers = json.dumps([[a.arn, a.sha256_hex, a.size, a.unzipped_size] for a in rec.layers])
    return (
        rec.function_name, rec.version, rec.config.to_json(), rec.code.sha256_hex, rec.code.code_sha256,
        rec.code.size, rec.code.unzipped_size, layers, rec.revision_id, rec.config_revision, rec.last_modified,
    )  # fmt: skip


def alias_from_row(row: tuple[Any, ...]) -> AliasRecord:
    fn, name, version, description, weights, rev = row
    return AliasRecord(
        function_name=fn,
        name=name,
        function_version=version,
        description=description,
        weights=json.loads(weights),
        revision_id=rev,
    )


def layer_from_row(row: tuple[Any, ...]) -> LayerVersionRecord:
    (name, version, desc, runtimes, archs, license_info, code_hex, sha, size, unzipped, created) = row
    return LayerVersionRecord(
        name=name,
        version=version,
        description=desc,
        compatible_runtimes=tuple(json.loads(runtimes)),
        compatible_architectures=tuple(json.loads(archs)),
        license_info=license_info,
        code=CodeRef(sha256_hex=code_hex, code_sha256=sha, size=size, unzipped_size=unzipped),
        created_date=created,
    )


def provisioned_from_row(row: tuple[Any, ...]) -> ProvisionedRecord:
    return ProvisionedRecord(*row)


def version_sort_key(version: str) -> tuple[int, int]:
    """$LATEST first, then numeric order."""
    return (0, 0) if version == "$LATEST" else (1, int(version))


def paginate(items: list[T], marker: str | None, max_items: int | None,
             key: Callable[[T], str]) -> tuple[list[T], str | None]:
    """Marker/MaxItems pagination over an ordered list; the marker is the key of the next item to return."""
    start = 0
    if marker:
        keys = [key(i) for i in items]
        start = keys.index(marker) if marker in keys else len(items)
    limit = max_items if max_items is not None else 50
    page = items[start : start + limit]
    nxt = key(items[start + limit]) if start + limit < len(items) else None
    return page, nxt
