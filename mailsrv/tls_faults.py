"""TLS certificate faults: certificates that fail a client's checks one way each, and the
per-service SSL contexts that present them on demand.

Each faulty certificate differs from the server's good one in exactly one respect, so a client
that rejects it rejects it for that reason (OpenSSL's verify codes in brackets):

- ``expired`` [10]: signed by the local CA, right names, ``notAfter`` a day ago;
- ``not-yet-valid`` [9]: ``notBefore`` a year ahead;
- ``wrong-host`` [62 with host checking]: names only ``wrong-host.invalid``;
- ``self-signed`` [18]: the leaf signs itself;
- ``untrusted-ca`` [20]: signed by a CA made here that no client trusts (not sent along);
- ``weak-key`` [66 at ``-auth_level 2``]: a 1024-bit RSA key, so the context that serves it
  lowers OpenSSL's security level to 0 (the client is the one that must refuse it).

``TlsContexts`` belongs to one server. It gives each TLS service (``imaps``, ``imap``'s
STARTTLS, ...) its own dispatching context: no certificate, only an SNI callback, which OpenSSL
calls on every ClientHello (with or without a server name) and which swaps the connection's
context for the good one (``server_ssl_context``, shared and cached) or, while a TLS fault is
set on that service, the faulty one. So the choice is made per connection, and withdrawing the
fault restores the good certificate for the next one. A dispatching context costs about 0.5 ms
to make, a context with a certificate 2 ms: per-service copies of the good one made every
fixture start 5 ms slower.
A faulty certificate is made on first use (the injector asks for it when the fault is added)
and kept for the server's life.
"""

from __future__ import annotations

import datetime
import logging
import ssl
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mailsrv.config import Config
from mailsrv.faults import TLS_CERTIFICATES, FaultInjector
from mailsrv.tls import CertPaths, all_names, cert_paths, key_pem, tls12_server_context

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

log = logging.getLogger(__name__)

#: The only name a wrong-host certificate carries (``.invalid`` never resolves, RFC 2606).
WRONG_HOST = "wrong-host.invalid"
#: Below what OpenSSL's security level 2 (Debian's default) accepts: 2048 bits.
WEAK_RSA_BITS = 1024


@dataclass(frozen=True, slots=True)
class FaultyChain:
    cert_pem: bytes
    key_pem: bytes


def _pem(cert: x509.Certificate) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def _name(common: str) -> x509.Name:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mailsrv"),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


def _untrusted_ca() -> tuple[x509.Name, ec.EllipticCurvePrivateKey]:
    """A CA no client trusts: only its name and key are needed to sign the leaf."""
    from cryptography.hazmat.primitives.asymmetric import ec

    return _name("mailsrv untrusted CA (TLS fault)"), ec.generate_private_key(ec.SECP256R1())


def make_faulty_chain(kind: str, ca: CertPaths, names: tuple[str, ...]) -> FaultyChain:
    """The certificate and key for fault ``kind``, signed (except self-signed and untrusted-ca)
    by the CA in ``ca``; ``names`` are the good certificate's names (localhost, ...)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID

    from mailsrv.tls import san_entry

    if kind not in TLS_CERTIFICATES:
        raise ValueError(f"certificate must be one of {', '.join(TLS_CERTIFICATES)}")
    now = datetime.datetime.now(datetime.UTC)
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if kind == "weak-key":
        key = rsa.generate_private_key(public_exponent=65537, key_size=WEAK_RSA_BITS)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    sans = (WRONG_HOST,) if kind == "wrong-host" else names
    subject = _name(sans[0])
    issuer_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if kind == "self-signed":
        issuer, issuer_key = subject, key
    elif kind == "untrusted-ca":
        issuer, issuer_key = _untrusted_ca()
    else:
        ca_cert = x509.load_pem_x509_certificate(ca.ca_file.read_bytes())
        loaded = serialization.load_pem_private_key(ca.ca_key.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise ValueError("the local CA key is not the ECDSA key mailsrv makes")
        issuer, issuer_key = ca_cert.subject, loaded
    not_before, not_after = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=90)
    if kind == "expired":
        not_before, not_after = now - datetime.timedelta(days=30), now - datetime.timedelta(days=1)
    elif kind == "not-yet-valid":
        not_before, not_after = (
            now + datetime.timedelta(days=365),
            now + datetime.timedelta(days=455),
        )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([san_entry(n) for n in sans]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )
    return FaultyChain(_pem(cert), key_pem(key))


def _load_chain(ctx: ssl.SSLContext, chain: FaultyChain) -> None:
    """``load_cert_chain`` reads files only: write both to a private temporary directory."""
    with tempfile.TemporaryDirectory(prefix="mailsrv-tls-fault-") as tmp:
        cert, key = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        cert.write_bytes(chain.cert_pem)
        key.touch(mode=0o600)
        key.write_bytes(chain.key_pem)
        ctx.load_cert_chain(cert, key)


class TlsContexts:
    """One server's TLS contexts: one per service with the good certificate, and the faulty
    ones, made when first asked for (see the module docstring)."""

    @classmethod
    def for_config(cls, config: Config, good: ssl.SSLContext, faults: FaultInjector) -> TlsContexts:
        """For a server whose certificates ``server_ssl_context(config)`` (``good``) has made."""
        paths = cert_paths(Path(config.certs_dir).resolve())
        return cls(good, paths, all_names(config.hostnames), faults)

    def __init__(
        self,
        good: ssl.SSLContext,
        paths: CertPaths,
        names: tuple[str, ...],
        faults: FaultInjector,
    ) -> None:
        self._good = good
        self._paths = paths
        self._names = names
        self._faults = faults
        self._lock = threading.Lock()
        self._services: dict[str, ssl.SSLContext] = {}
        self._faulty: dict[str, ssl.SSLContext] = {}
        faults.prepare_certificate = self.faulty

    def for_service(self, service: str) -> ssl.SSLContext:
        """The context a listener of ``service`` serves TLS with (made once)."""
        with self._lock:
            ctx = self._services.get(service)
            if ctx is None:
                ctx = tls12_server_context()
                ctx.sni_callback = self._sni_callback(service)
                self._services[service] = ctx
            return ctx

    def faulty(self, kind: str) -> ssl.SSLContext:
        """The context that presents faulty certificate ``kind`` (made once)."""
        with self._lock:
            ctx = self._faulty.get(kind)
            if ctx is None:
                chain = make_faulty_chain(kind, self._paths, self._names)
                ctx = tls12_server_context(weak_keys=kind == "weak-key")
                _load_chain(ctx, chain)
                self._faulty[kind] = ctx
            return ctx

    def _sni_callback(self, service: str) -> Callable[[ssl.SSLObject, str, ssl.SSLContext], None]:
        def choose(conn: ssl.SSLObject, _name: str | None, _ctx: ssl.SSLContext) -> None:
            kind = self._faults.tls_certificate(service)
            chosen = self._good
            if kind is not None:
                try:
                    chosen = self.faulty(kind)
                except (OSError, ValueError, ssl.SSLError):
                    log.exception("could not make the %s certificate for a TLS fault", kind)
            conn.context = chosen

        return choose
