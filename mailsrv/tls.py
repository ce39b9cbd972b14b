"""Certificates and TLS contexts: a local CA, a server certificate it signs, and SSL contexts.

``ensure_certificates`` makes (or reuses) ``ca.pem``/``ca-key.pem`` and ``server.pem``/
``server-key.pem`` in a directory: ECDSA P-256, so generation takes milliseconds. The server
certificate names localhost, 127.0.0.1, ::1 and any configured host names; when a host name is
added later, the server certificate is made again (by the same CA, so clients keep trusting it).
Files are written atomically and keys are mode 0600.

Checking existing certificates needs ``cryptography``, whose import alone costs tens of
milliseconds, so a check that passes is remembered in ``verified.json`` (the files' inode,
mtime and size, the names, and when to renew). The next start with the same files trusts that
record and never imports ``cryptography``; any change to the files means a full check again.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import ssl
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mailsrv.config import Config

if TYPE_CHECKING:  # imported where used: see the module docstring
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

#: Names every server certificate carries.
DEFAULT_NAMES: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
#: Ten years for the CA, two for the server certificate (renewed on demand with ``--force``).
CA_VALID_DAYS = 3650
SERVER_VALID_DAYS = 825
#: Renew the server certificate when it expires within this many days.
RENEW_BEFORE_DAYS = 30

#: The record of the last check that passed (see the module docstring).
VERIFIED_FILE = "verified.json"

#: TLS 1.2 ciphers: forward-secret AEAD only (TLS 1.3 suites are always modern).
_TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!SHA1:!DSS"

_cache_lock = threading.Lock()
_server_contexts: dict[tuple[Path, tuple[str, ...]], tuple[tuple[int, int], ssl.SSLContext]] = {}


@dataclass(frozen=True, slots=True)
class CertPaths:
    ca_file: Path
    ca_key: Path
    cert_file: Path
    key_file: Path


def cert_paths(certs_dir: Path) -> CertPaths:
    d = Path(certs_dir)
    return CertPaths(d / "ca.pem", d / "ca-key.pem", d / "server.pem", d / "server-key.pem")


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _make_ca(paths: CertPaths) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mailsrv"),
            x509.NameAttribute(NameOID.COMMON_NAME, "mailsrv local CA"),
        ]
    )
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_atomic(paths.ca_key, key_pem(key), 0o600)
    _write_atomic(paths.ca_file, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert, key


def san_entry(name: str) -> x509.GeneralName:
    from cryptography import x509

    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _make_server_cert(
    paths: CertPaths,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    names: tuple[str, ...],
) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SERVER_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([san_entry(n) for n in names]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_atomic(paths.key_file, key_pem(key), 0o600)
    _write_atomic(paths.cert_file, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _load_ca(paths: CertPaths) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        cert = x509.load_pem_x509_certificate(paths.ca_file.read_bytes())
        key = serialization.load_pem_private_key(paths.ca_key.read_bytes(), password=None)
    except (OSError, ValueError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        return None
    if cert.public_key() != key.public_key() or cert.not_valid_after_utc <= _now():
        return None
    return cert, key


def _server_cert_ok(paths: CertPaths, ca_cert: x509.Certificate, names: tuple[str, ...]) -> bool:
    """The existing server cert is signed by this CA, valid for a while, and names every host."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization

    try:
        cert = x509.load_pem_x509_certificate(paths.cert_file.read_bytes())
        key = serialization.load_pem_private_key(paths.key_file.read_bytes(), password=None)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    if cert.public_key() != key.public_key() or cert.issuer != ca_cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (InvalidSignature, ValueError, TypeError):
        return False
    if cert.not_valid_after_utc <= _now() + datetime.timedelta(days=RENEW_BEFORE_DAYS):
        return False
    have = {str(v).lower() for v in san.get_values_for_type(x509.DNSName)}
    have |= {str(v) for v in san.get_values_for_type(x509.IPAddress)}
    return all(_canonical(n) in have for n in names)


def _canonical(name: str) -> str:
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name.lower()


def all_names(hostnames: Iterable[str]) -> tuple[str, ...]:
    names: list[str] = []
    for n in (*DEFAULT_NAMES, *hostnames):
        n = n.strip()
        if n and _canonical(n) not in {_canonical(x) for x in names}:
            names.append(n)
    return tuple(names)


def ensure_certificates(
    certs_dir: Path, hostnames: Iterable[str] = (), force: bool = False
) -> CertPaths:
    """Make the CA and server certificate in ``certs_dir`` unless usable ones are there.

    ``force`` makes a new CA and server certificate. A server certificate that is missing, not
    from this CA, about to expire, or not naming every host in ``hostnames`` is made again.
    """
    certs_dir = Path(certs_dir)
    certs_dir.mkdir(parents=True, exist_ok=True)
    paths = cert_paths(certs_dir)
    names = all_names(hostnames)
    if not force and _still_verified(certs_dir, paths, names):
        return paths
    ca = None if force else _load_ca(paths)
    if ca is None:
        ca = _make_ca(paths)
        _make_server_cert(paths, ca[0], ca[1], names)
    elif not _server_cert_ok(paths, ca[0], names):
        _make_server_cert(paths, ca[0], ca[1], names)
    _record_verified(certs_dir, paths, names, ca[0])
    return paths


def _files_state(paths: CertPaths) -> list[list[int]] | None:
    """Inode, mtime and size of the four files: any replacement or edit changes it."""
    out = []
    for p in (paths.ca_file, paths.ca_key, paths.cert_file, paths.key_file):
        try:
            st = p.stat()
        except OSError:
            return None
        out.append([st.st_ino, st.st_mtime_ns, st.st_size])
    return out


def _still_verified(certs_dir: Path, paths: CertPaths, names: tuple[str, ...]) -> bool:
    """A full check passed for these very files and names, and no renewal is due yet."""
    try:
        record = json.loads((certs_dir / VERIFIED_FILE).read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(record, dict):
        return False
    files, covered, renew_at = record.get("files"), record.get("names"), record.get("renew_at")
    if not isinstance(covered, list) or not isinstance(renew_at, int | float):
        return False
    state = _files_state(paths)
    return (
        state is not None
        and files == state
        and time.time() < renew_at
        and all(_canonical(n) in covered for n in names)
    )


def _record_verified(
    certs_dir: Path, paths: CertPaths, names: tuple[str, ...], ca_cert: x509.Certificate
) -> None:
    from cryptography import x509

    state = _files_state(paths)
    if state is None:
        return
    try:
        cert = x509.load_pem_x509_certificate(paths.cert_file.read_bytes())
    except (OSError, ValueError):
        return
    renew = cert.not_valid_after_utc - datetime.timedelta(days=RENEW_BEFORE_DAYS)
    renew_at = min(renew, ca_cert.not_valid_after_utc).timestamp()
    record = {"files": state, "names": [_canonical(n) for n in names], "renew_at": renew_at}
    try:
        _write_atomic(certs_dir / VERIFIED_FILE, json.dumps(record).encode(), 0o644)
    except OSError:
        pass  # a read-only certs directory: every start checks in full, as before


def _stamp(path: Path) -> tuple[int, int]:
    """Changes whenever the file is replaced (atomic writes give it a new inode)."""
    try:
        st = path.stat()
    except OSError:
        return (0, 0)
    return (st.st_ino, st.st_mtime_ns)


def server_ssl_context(config: Config) -> ssl.SSLContext:
    """The server-side context for ``config``: TLS 1.2+, modern ciphers, our certificate chain.

    Cached per certs dir and host names, so many servers in one test session pay once; a
    certificate re-made on disk (``mailsrv certs --force``) is picked up.
    """
    certs_dir = Path(config.certs_dir).resolve()
    key = (certs_dir, tuple(config.hostnames))
    with _cache_lock:
        cached = _server_contexts.get(key)
        if cached is not None and cached[0] == _stamp(cert_paths(certs_dir).cert_file):
            return cached[1]
        paths = ensure_certificates(certs_dir, config.hostnames)
        stamp = _stamp(paths.cert_file)
        ctx = tls12_server_context()
        ctx.load_cert_chain(paths.cert_file, paths.key_file)
        _server_contexts[key] = (stamp, ctx)
        return ctx


def tls12_server_context(weak_keys: bool = False) -> ssl.SSLContext:
    """A server context without a certificate yet: TLS 1.2+, modern ciphers. ``weak_keys``
    lowers OpenSSL's security level to 0 so a TLS fault can serve a 1024-bit RSA key."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(_TLS12_CIPHERS + (":@SECLEVEL=0" if weak_keys else ""))
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    return ctx


def client_ssl_context(ca_file: Path) -> ssl.SSLContext:
    """A client context that trusts only our CA and checks the host name (tests, examples)."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx
