"""The faulty certificates (each wrong in one respect only) and the injector's TLS faults."""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mailsrv.faults import FaultInjector
from mailsrv.tls import DEFAULT_NAMES, ensure_certificates
from mailsrv.tls_faults import WRONG_HOST, TlsContexts, make_faulty_chain


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("certs")


def leaf(ca: Path, kind: str) -> tuple[x509.Certificate, x509.Certificate]:
    paths = ensure_certificates(ca)
    chain = make_faulty_chain(kind, paths, DEFAULT_NAMES)
    ca_cert = x509.load_pem_x509_certificate(paths.ca_file.read_bytes())
    return x509.load_pem_x509_certificate(chain.cert_pem), ca_cert


def names(cert: x509.Certificate) -> list[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(v) for v in san.get_values_for_type(x509.DNSName)]


def test_expired_and_not_yet_valid_differ_only_in_dates(ca: Path) -> None:
    now = datetime.datetime.now(datetime.UTC)
    expired, ca_cert = leaf(ca, "expired")
    assert expired.not_valid_after_utc < now
    expired.verify_directly_issued_by(ca_cert)
    early, _ = leaf(ca, "not-yet-valid")
    assert early.not_valid_before_utc > now
    early.verify_directly_issued_by(ca_cert)
    assert names(expired) == names(early) == ["localhost"]


def test_wrong_host_names_only_an_invalid_host(ca: Path) -> None:
    cert, ca_cert = leaf(ca, "wrong-host")
    assert names(cert) == [WRONG_HOST]
    cert.verify_directly_issued_by(ca_cert)


def test_self_signed_and_untrusted_ca_are_not_from_the_local_ca(ca: Path) -> None:
    own, ca_cert = leaf(ca, "self-signed")
    assert own.issuer == own.subject
    own.verify_directly_issued_by(own)
    stranger, _ = leaf(ca, "untrusted-ca")
    assert stranger.issuer != ca_cert.subject and stranger.issuer != stranger.subject


def test_weak_key_is_1024_bit_rsa_from_the_local_ca(ca: Path) -> None:
    cert, ca_cert = leaf(ca, "weak-key")
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 1024
    assert isinstance(ca_cert.public_key(), ec.EllipticCurvePublicKey)
    cert.verify_directly_issued_by(ca_cert)


def test_unknown_kind_is_refused(ca: Path) -> None:
    with pytest.raises(ValueError, match="certificate must be one of"):
        make_faulty_chain("revoked", ensure_certificates(ca), DEFAULT_NAMES)


def test_injector_counts_handshakes_and_never_matches_commands(ca: Path) -> None:
    faults = FaultInjector()
    good = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    contexts = TlsContexts(good, ensure_certificates(ca), DEFAULT_NAMES, faults)
    fault = faults.tls("IMAPS", "Expired", times=2)
    assert (fault.protocol, fault.certificate) == ("imaps", "expired")
    assert faults.check("imap", "TLS") is None and faults.check("imaps", "TLS") is None
    assert faults.tls_certificate("pop3s") is None
    assert [faults.tls_certificate("imaps") for _ in range(3)] == ["expired", "expired", None]
    assert contexts.faulty("expired") is contexts.faulty("expired")  # made once
    assert contexts.for_service("imaps") is not contexts.for_service("imap")


@pytest.mark.parametrize(
    ("protocol", "certificate", "reason"),
    [("lmtp", "expired", "protocol must be one of"), ("imaps", "nope", "certificate must")],
)
def test_injector_refuses_bad_tls_faults(protocol: str, certificate: str, reason: str) -> None:
    faults = FaultInjector()
    faults.prepare_certificate = lambda kind: None
    with pytest.raises(ValueError, match=reason):
        faults.tls(protocol, certificate)
