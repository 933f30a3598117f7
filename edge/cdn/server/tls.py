"""The POPs' HTTPS listener: a local certificate authority and one server certificate it signs.

CloudFront serves viewers over HTTPS with a certificate for ``*.cloudfront.net`` or the distribution's aliases
("Require HTTPS for communication between viewers and CloudFront",
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/using-https-viewers-to-cloudfront.html). A local
stack cannot have a public certificate, so edgelab makes its own CA once, in ``<state_dir>/tls/``:

* ``edgelab-ca.pem`` (the CA certificate, the file to trust: ``curl --cacert``, ``SSL_CERT_FILE``,
  ``NODE_EXTRA_CA_CERTS``, or the system/browser trust store) and ``edgelab-ca-key.pem`` (mode 0600);
* ``pop.pem`` / ``pop-key.pem``: the certificate every POP serves, for ``localhost``, ``*.localhost``,
  ``127.0.0.1``, ``::1``, ``*.cloudfront.net`` and the distribution's ``Aliases``, valid 397 days; it is made
  again when a name is missing or it expires within 30 days (the CA stays, so a trusted CA stays trusted).

Keys are ECDSA P-256 (fast to make, accepted by every TLS client); the server context allows TLS 1.2 and 1.3,
what CloudFront's default security policy offers.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["DEFAULT_NAMES", "TlsFiles", "ensure_certificates", "server_context"]

DEFAULT_NAMES = ("localhost", "*.localhost", "127.0.0.1", "::1", "*.cloudfront.net")
CA_FILE, CA_KEY_FILE, CERT_FILE, KEY_FILE = "edgelab-ca.pem", "edgelab-ca-key.pem", "pop.pem", "pop-key.pem"
_CA_DAYS, _CERT_DAYS, _RENEW_DAYS = 3650, 397, 30


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Where the CA and the POP certificate are (see the module docstring)."""

    ca: Path
    cert: Path
    key: Path


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _san(names: Iterable[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def _make_ca(directory: Path, now: datetime.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "edgelab"),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"edgelab local CA ({os.uname().nodename})")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=_CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False),
                           critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    _write_private(directory / CA_KEY_FILE, _key_pem(key))
    (directory / CA_FILE).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    try:
        cert = x509.load_pem_x509_certificate((directory / CA_FILE).read_bytes())
        key = serialization.load_pem_private_key((directory / CA_KEY_FILE).read_bytes(), password=None)
    except (OSError, ValueError):
        return None
    return (cert, key) if isinstance(key, ec.EllipticCurvePrivateKey) else None


def _current(path: Path, names: tuple[str, ...], ca: x509.Certificate, now: datetime.datetime) -> bool:
    """Whether the server certificate at ``path`` was issued by ``ca``, names every one of ``names`` and does not
    expire within the renewal window."""
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    have = {str(v) for v in san.get_values_for_type(x509.DNSName)}
    have |= {str(v) for v in san.get_values_for_type(x509.IPAddress)}
    wanted = {str(ipaddress.ip_address(n)) if _is_ip(n) else n for n in names}
    return (cert.issuer == ca.subject and wanted <= have
            and cert.not_valid_after_utc - now > datetime.timedelta(days=_RENEW_DAYS))


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def ensure_certificates(directory: Path, names: Iterable[str] = ()) -> TlsFiles:
    """The CA (made once) and a current server certificate for :data:`DEFAULT_NAMES` plus ``names`` in
    ``directory`` (created 0700); see the module docstring."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    wanted = tuple(dict.fromkeys((*DEFAULT_NAMES, *(n.lower() for n in names if n))))
    now = datetime.datetime.now(datetime.UTC)
    loaded = _load_ca(directory)
    ca, ca_key = loaded if loaded is not None else _make_ca(directory, now)
    files = TlsFiles(ca=directory / CA_FILE, cert=directory / CERT_FILE, key=directory / KEY_FILE)
    if loaded is not None and _current(files.cert, wanted, ca, now):
        return files
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "edgelab"),
                                     x509.NameAttribute(NameOID.COMMON_NAME, "edgelab POP")]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=_CERT_DAYS))
            .add_extension(_san(wanted), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    _write_private(files.key, _key_pem(key))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return files


def server_context(files: TlsFiles) -> ssl.SSLContext:
    """The TLS server context of the POPs' HTTPS listeners (TLS 1.2+, HTTP/1.1 by ALPN)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(files.cert, files.key)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx
