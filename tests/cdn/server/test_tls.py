"""The local CA and the POPs' certificate (edge.cdn.server.tls)."""

from __future__ import annotations

import ssl
from pathlib import Path

from cryptography import x509

from edge.cdn.server.tls import ensure_certificates, server_context


def _names(path: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(v) for v in san.get_values_for_type(x509.DNSName)} | {
        str(v) for v in san.get_values_for_type(x509.IPAddress)}


def test_made_once_renewed_for_a_new_name_with_the_same_ca(tmp_path: Path) -> None:
    files = ensure_certificates(tmp_path / "tls")
    ca, cert = files.ca.read_bytes(), files.cert.read_bytes()
    assert (tmp_path / "tls" / "edgelab-ca-key.pem").stat().st_mode & 0o777 == 0o600
    assert files.key.stat().st_mode & 0o777 == 0o600
    assert {"localhost", "127.0.0.1", "::1", "*.cloudfront.net"} <= _names(files.cert)
    assert ensure_certificates(tmp_path / "tls").cert.read_bytes() == cert  # current: kept
    again = ensure_certificates(tmp_path / "tls", ["www.Example.com"])
    assert again.ca.read_bytes() == ca and again.cert.read_bytes() != cert
    assert "www.example.com" in _names(again.cert)
    # the CA verifies the certificate, for every name it carries
    client = ssl.create_default_context(cafile=str(files.ca))
    server_context(again)  # loads
    chain = x509.load_pem_x509_certificate(again.cert.read_bytes())
    ca_cert = x509.load_pem_x509_certificate(ca)
    chain.verify_directly_issued_by(ca_cert)
    assert client.verify_mode == ssl.CERT_REQUIRED
