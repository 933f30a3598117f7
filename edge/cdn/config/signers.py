"""The keys signed URLs and cookies are checked with: public keys and key groups from the settings (what
``aws cloudfront create-public-key`` / ``create-key-group`` make on AWS), legacy trusted signer accounts, and how a
behavior's ``TrustedKeyGroups`` / ``TrustedSigners`` resolve to them.

Settings::

    [public_keys.K2JCJMDEHXQW5F]         # the public key's ID: what Key-Pair-Id names
    encoded_key = "-----BEGIN PUBLIC KEY-----..."   # PublicKeyConfig.EncodedKey (PEM), or
    file = "keys/public.pem"             # a PEM file (relative to the settings file)

    [key_groups.f780cf50-393e-450d-ba6f-cbddd6a189df]   # the key group's ID (what TrustedKeyGroups.Items name)
    name = "my-signers"                  # optional; a behavior may name the group by it too
    items = ["K2JCJMDEHXQW5F"]           # KeyGroupConfig.Items: public key IDs

    [trusted_signers]                    # legacy TrustedSigners: account ID (or "self") -> its key pair IDs
    self = ["APKAEIBAERJR2EXAMPLE"]      # each a [public_keys.<id>] entry

AWS: "Specify signers that can create signed URLs and signed cookies"
(https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/private-content-trusted-signers.html): up to 4 key
groups per behavior... (quotas are not enforced), 5 public keys per group; RSA 2048 or ECDSA 256 keys
(``PublicKeyConfig``, https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_PublicKeyConfig.html).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from edge.cdn.config.policies import ConfigError, items
from edge.cdn.signing import PublicKey, TrustedKey, load_public_key

__all__ = ["KeyGroup", "Signers", "parse_signers", "trusted_keys"]

_GROUP_KEYS_MAX = 5


@dataclass(frozen=True, slots=True)
class KeyGroup:
    id: str
    name: str
    key_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Signers:
    """Public keys by ID, key groups by ID and by name, legacy signer accounts -> key pair IDs."""

    public_keys: Mapping[str, PublicKey] = field(default_factory=dict)
    key_groups: Mapping[str, KeyGroup] = field(default_factory=dict)
    accounts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def _table(data: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ConfigError(path, "must be a table")
    return data


def _public_key(data: Any, path: str, base: Path) -> PublicKey:
    t = _table(data, path)
    unknown = set(t) - {"encoded_key", "file", "name", "comment"}
    if unknown:
        raise ConfigError(f"{path}.{sorted(unknown)[0]}", "unknown setting (encoded_key or file; name, comment)")
    pem, where = t.get("encoded_key"), f"{path}.encoded_key"
    if ("file" in t) == (pem is not None):
        raise ConfigError(path, "exactly one of encoded_key (PEM text) and file (a PEM file) is required")
    if "file" in t:
        where = f"{path}.file"
        if not isinstance(t["file"], str) or "\x00" in t["file"]:
            raise ConfigError(where, "must be a path")
        p = Path(t["file"]).expanduser()
        try:
            pem = (p if p.is_absolute() else base / p).read_bytes()
        except OSError as exc:
            raise ConfigError(where, f"cannot read the PEM file: {exc.strerror or exc}") from None
    if not isinstance(pem, (str, bytes)):
        raise ConfigError(where, "must be PEM text")
    try:
        return load_public_key(pem)
    except ValueError as exc:
        raise ConfigError(where, f"not a usable public key: {exc}") from None


def _key_ids(value: Any, path: str, public_keys: Mapping[str, PublicKey]) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(path, "must be a non-empty array of public key IDs")
    for i, k in enumerate(value):
        if k not in public_keys:
            raise ConfigError(f"{path}[{i}]", f"no [public_keys.{k}] in the settings")
    return tuple(value)


def parse_signers(public_keys: Any, key_groups: Any, trusted_signers: Any, base: Path) -> Signers:
    """The ``[public_keys]``, ``[key_groups]`` and ``[trusted_signers]`` tables of the settings."""
    keys = {k: _public_key(v, f"public_keys.{k}", base) for k, v in _table(public_keys, "public_keys").items()}
    groups: dict[str, KeyGroup] = {}
    for gid, data in _table(key_groups, "key_groups").items():
        path = f"key_groups.{gid}"
        t = _table(data, path)
        unknown = set(t) - {"name", "items", "comment"}
        if unknown:
            raise ConfigError(f"{path}.{sorted(unknown)[0]}", "unknown setting (name, items, comment)")
        name = t.get("name", "")
        if not isinstance(name, str):
            raise ConfigError(f"{path}.name", "must be a string")
        ids = _key_ids(t.get("items"), f"{path}.items", keys)
        if len(ids) > _GROUP_KEYS_MAX:
            raise ConfigError(f"{path}.items", f"a key group holds at most {_GROUP_KEYS_MAX} public keys")
        groups[gid] = KeyGroup(gid, name, ids)
    for g in list(groups.values()):
        if g.name:
            groups.setdefault(g.name, g)
    accounts = {acct: _key_ids(v, f"trusted_signers.{acct}", keys)
                for acct, v in _table(trusted_signers, "trusted_signers").items()}
    return Signers(MappingProxyType(keys), MappingProxyType(groups), MappingProxyType(accounts))


def trusted_keys(key_groups: Any, signers_field: Any, path: str, signers: Signers) -> Mapping[str, TrustedKey] | None:
    """A behavior's ``TrustedKeyGroups`` and ``TrustedSigners`` resolved to the keys it trusts (None: the behavior is
    public). ``path`` is the behavior's path in the configuration."""
    out: dict[str, TrustedKey] = {}
    enabled = False
    for name, value in (("TrustedKeyGroups", key_groups), ("TrustedSigners", signers_field)):
        if value is None:
            continue
        fpath = f"{path}.{name}"
        if not isinstance(value, Mapping):
            raise ConfigError(fpath, "must be {Enabled, Quantity, Items}")
        on = value.get("Enabled", False)
        if not isinstance(on, bool):
            raise ConfigError(f"{fpath}.Enabled", "must be true or false")
        refs = items({k: v for k, v in value.items() if k != "Enabled"}, fpath, required=False)
        if not on:
            continue
        enabled = True
        if not refs:
            raise ConfigError(f"{fpath}.Items", "Enabled needs at least one item")
        for i, ref in enumerate(refs):
            ipath = f"{fpath}.Items[{i}]"
            if not isinstance(ref, str):
                raise ConfigError(ipath, "must be a string")
            if name == "TrustedKeyGroups":
                group = signers.key_groups.get(ref)
                if group is None:
                    raise ConfigError(ipath, f"unknown key group {ref!r}: define it under [key_groups.{ref}] in the "
                                             "settings with the IDs of its [public_keys] (the public keys' PEM, as "
                                             "aws cloudfront get-public-key prints EncodedKey)")
                ids, label = group.key_ids, f"key group {group.id}"
            else:
                acct = signers.accounts.get(ref)
                if acct is None:
                    raise ConfigError(ipath, f"unknown trusted signer {ref!r}: list its key pair IDs under "
                                             f"[trusted_signers] in the settings ({ref} = [\"APKA...\"]) with each "
                                             "public key under [public_keys.<id>]")
                ids, label = acct, f"signer {ref}"
            for k in ids:
                out.setdefault(k, TrustedKey(k, signers.public_keys[k], label))
    return MappingProxyType(out) if enabled else None
