"""Signed URLs and cookies through a real POP: a behavior with TrustedKeyGroups refuses unsigned, unknown-key and
expired requests with CloudFront's XML 403s, serves a signed URL (the signing parameters reach neither the cache key
nor the origin: two signatures of one object share its entry) and signed cookies; other behaviors stay public; the
``edgelab sign-url`` helper's URL is accepted."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from yarl import URL

from edge.cdn.config.signers import KeyGroup, Signers
from edge.cdn.signing import signed_cookies, signed_url
from tests.e2e.conftest import REPO, EdgeStack, behavior_config

MISSING = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>MissingKey</Code><Message>Missing Key-Pair-Id query '
           b"parameter or cookie value</Message></Error>")


async def test_signed_urls_and_cookies(edge: EdgeStack, tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signers = Signers(public_keys={"K1": key.public_key()}, key_groups={"kg1": KeyGroup("kg1", "", ("K1",))})
    private = behavior_config("/private/*", headers=(), query_string=True)
    private["TrustedKeyGroups"] = {"Enabled": True, "Quantity": 1, "Items": ["kg1"]}
    edge.origin.script("/private/a.txt", body=b"secret", headers={"Cache-Control": "max-age=60"})
    edge.origin.script("/open.txt", body=b"open", headers={"Cache-Control": "max-age=60"})
    await edge.start(behaviors=[private], settings_overrides={"signers": signers})
    base = f"http://127.0.0.1:{edge.pop.port}" if edge.pop else ""

    async def fetch(url: str, **kw: object) -> tuple[int, object, bytes]:
        assert edge.session is not None
        async with edge.session.get(URL(url, encoded=True), allow_redirects=False, **kw) as r:  # type: ignore[arg-type]
            return r.status, r.headers, await r.read()

    s, h, b = await edge.get("/private/a.txt?size=2")
    assert (s, b, h["Content-Type"], h["X-Cache"]) == (403, MISSING, "text/xml", "Error from cloudfront")
    s, _, b = await edge.get("/open.txt")
    assert (s, b) == (200, b"open")  # the default behavior is public

    now = int(time.time())
    url = signed_url(f"{base}/private/a.txt?size=2", key, "K1", now + 300)
    s, h, b = await fetch(url)
    assert (s, b, h["X-Cache"]) == (200, b"secret", "Miss from cloudfront")
    assert edge.origin.requests["/private/a.txt"][-1].query == "size=2"  # no signing parameters forwarded
    s, h, _ = await fetch(signed_url(f"{base}/private/a.txt?size=2", key, "K1", now + 600))
    assert (s, h["X-Cache"]) == (200, "Hit from cloudfront")  # one cache entry for every signature
    assert edge.origin.hits["/private/a.txt"] == 1

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    s, _, b = await fetch(signed_url(f"{base}/private/a.txt?size=2", other, "K9", now + 300))
    assert (s, b"<Code>InvalidKey</Code><Message>Unknown Key</Message>" in b) == (403, True)
    s, _, b = await fetch(signed_url(f"{base}/private/a.txt?size=2", other, "K1", now + 300))  # wrong key
    assert (s, b"<Code>AccessDenied</Code>" in b) == (403, True)
    s, _, b = await fetch(signed_url(f"{base}/private/a.txt?size=2", key, "K1", now - 5))  # expired
    assert (s, b"<Code>AccessDenied</Code>" in b) == (403, True)

    jar = signed_cookies(f"{base}/private/*", key, "K1", now + 300)
    s, _, b = await edge.get("/private/a.txt?size=2", headers={"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())})
    assert (s, b) == (200, b"secret")

    pem = tmp_path / "key.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edge.control.cli", "sign-url", f"{base}/private/a.txt?size=2", "--key-pair-id", "K1",
        "--private-key", str(pem), "--expires-in", "120", cwd=REPO, stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0
    s, _, b = await fetch(out.decode().strip())
    assert (s, b) == (200, b"secret")
