"""Reading a CloudFront JSON object: typed getters that name ``path.Field`` in their errors, track which fields were
consumed, and say what is left (refused with the reason and the next step, or a startup line for a field without
local effect; :mod:`edge.cdn.config.fields`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from edge.cdn.config.fields import FIELDS, notice, refusal
from edge.cdn.config.policies import ConfigError, is_empty

__all__ = ["Obj"]


class Obj:
    """A JSON object being read: typed getters naming ``path.Field``, tracking which fields were consumed."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(path, f"must be an object, got {type(data).__name__}")
        self.data, self.path, self.seen = data, path, set[str]()

    def p(self, k: str) -> str:
        return f"{self.path}.{k}"

    def raw(self, k: str, default: Any = None) -> Any:
        self.seen.add(k)
        return self.data.get(k, default)

    def str_(self, k: str, default: str | None = None, *, required: bool = False) -> str:
        v = self.raw(k, default)
        if v is None and required:
            raise ConfigError(self.p(k), "required")
        if not isinstance(v, str):
            raise ConfigError(self.p(k), f"must be a string, got {v!r}")
        return v

    def bool_(self, k: str, default: bool) -> bool:
        v = self.raw(k, default)
        if not isinstance(v, bool):
            raise ConfigError(self.p(k), f"must be true or false, got {v!r}")
        return v

    def int_(self, k: str, default: int | None, lo: int, hi: int) -> int:
        v = self.raw(k, default)
        if isinstance(v, str) and v.isdigit():  # the API prints some integers (ResponseCode) as strings
            v = int(v)
        if v is None:
            raise ConfigError(self.p(k), "required")
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise ConfigError(self.p(k), f"must be an integer between {lo} and {hi}, got {v!r}")
        return v

    def reject_rest(self, no_effect: tuple[str, ...] = (), shape: str = "") -> None:
        """Every field not consumed must be a no-local-effect field or empty/default; otherwise an error (with the
        reason and the next step when ``shape.field`` is a refused field of :mod:`edge.cdn.config.fields`)."""
        for k, v in self.data.items():
            if k in self.seen or k in no_effect or is_empty(v):
                continue
            t = FIELDS.get(f"{shape}.{k}")
            raise ConfigError(self.p(k), refusal(f"{shape}.{k}") if t is not None and t.kind == "refused"
                              else "not supported by edgelab (unknown field)")

    def notices(self, shape: str, fields: tuple[str, ...], out: list[str]) -> None:
        """Append the startup line of each no-local-effect ``shape.field`` of ``fields`` that is set."""
        for k in fields:
            v = self.raw(k)
            if not is_empty(v):
                out.append(notice(f"{shape}.{k}", self.p(k), _brief(v)))


def _brief(value: Any) -> str:
    """A short rendering of a field's value for its startup line."""
    if isinstance(value, Mapping) and "Items" in value:
        value = value["Items"]
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), default=str)
    return text if len(text) <= 80 else text[:77] + "..."
