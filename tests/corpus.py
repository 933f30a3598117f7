"""Where the corpus of real CloudFront configurations is: ``shared/corpus/cloudfront-configs`` next to the checkout
or next to any folder above it (the steering repository's ``shared/``; the files are never copied into this
repository and never edited), or the folder named by ``EDGELAB_CORPUS``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

_REPO = Path(__file__).resolve().parents[1]


def _find() -> Path | None:
    given = os.environ.get("EDGELAB_CORPUS")
    if given:
        return Path(given)
    for folder in (_REPO, *_REPO.parents):
        candidate = folder / "shared" / "corpus" / "cloudfront-configs"
        if candidate.is_dir():
            return candidate
    return None


CORPUS = _find()


def corpus_dir() -> Path:
    """The corpus folder, or a skip that says how to provide it."""
    if CORPUS is None or not CORPUS.is_dir():
        pytest.skip("the corpus of real CloudFront configurations was not found: set EDGELAB_CORPUS to the folder "
                    "holding the *.json files (shared/corpus/cloudfront-configs of the steering repository)")
    return CORPUS


def _documents() -> list[dict[str, Any]]:
    out = []
    for path in sorted(corpus_dir().glob("*.json")):
        doc = json.loads(path.read_bytes().decode("utf-8-sig"))  # 29 starts with a BOM, as the AWS CLI accepts
        for key in ("DistributionConfigWithTags", "Distribution"):
            doc = doc.get(key, doc)
        out.append(doc.get("DistributionConfig", doc))
    return out


def corpus_settings(folder: Path) -> str:
    """Settings TOML declaring what the corpus's configurations name and AWS would hold: their custom cache and
    response headers policies (a minimal policy each) and their key groups (one public key each, generated here; the PEM is
    written into ``folder``)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from edge.cdn.config.policies import MANAGED_CACHE_POLICIES, find_by_id_or_name
    from edge.cdn.config.response_headers import MANAGED_RESPONSE_HEADERS_POLICIES

    policies: set[str] = set()
    cache_policies: set[str] = set()
    groups: set[str] = set()
    for cfg in _documents():
        behaviors = [cfg.get("DefaultCacheBehavior", {}), *((cfg.get("CacheBehaviors") or {}).get("Items") or [])]
        for b in behaviors:
            rhp, cp = b.get("ResponseHeadersPolicyId"), b.get("CachePolicyId")
            if rhp and find_by_id_or_name(MANAGED_RESPONSE_HEADERS_POLICIES, rhp) is None:
                policies.add(rhp)
            if cp and find_by_id_or_name(MANAGED_CACHE_POLICIES, cp) is None:
                cache_policies.add(cp)
            tkg = b.get("TrustedKeyGroups") or {}
            if tkg.get("Enabled"):
                groups.update(tkg.get("Items") or [])
    lines = []
    for i, pid in enumerate(sorted(cache_policies)):
        lines += [f'[cache_policies."{pid}"]', f'Name = "corpus-cache-policy-{i}"', "MinTTL = 0", "DefaultTTL = 60",
                  "MaxTTL = 3600", f'[cache_policies."{pid}".ParametersInCacheKeyAndForwardedToOrigin]',
                  'HeadersConfig = { HeaderBehavior = "none" }', 'CookiesConfig = { CookieBehavior = "none" }',
                  'QueryStringsConfig = { QueryStringBehavior = "none" }']
    for i, pid in enumerate(sorted(policies)):
        lines += [f'[response_headers_policies."{pid}"]', f'Name = "corpus-policy-{i}"',
                  f'[response_headers_policies."{pid}".CustomHeadersConfig]', "Quantity = 1",
                  f'Items = [{{Header = "X-Corpus-Policy", Value = "{i}", Override = true}}]']
    if groups:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (folder / "corpus-public.pem").write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        lines += ['[public_keys.KCORPUS0000001]', f'file = "{folder / "corpus-public.pem"}"']
        for gid in sorted(groups):
            lines += [f'[key_groups."{gid}"]', 'items = ["KCORPUS0000001"]']
    return "\n".join(lines) + "\n"
