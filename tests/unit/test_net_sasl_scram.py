"""SCRAM-SHA-256 (and its SHA-1 sibling) on the shared sans-I/O SASL core, with the RFCs' own
exchanges byte for byte, and every way a client message can be wrong."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from mailsrv.net import sasl
from mailsrv.net.sasl import Challenge, Failure, NeedSecret, Proven, SaslError, ScramKeys
from mailsrv.net.sasl_scram import Scram, ScramSha256, decode_saslname
from mailsrv.net.scram_keys import BadScramValue

# RFC 7677 §3
R7677_CLIENT_FIRST = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
R7677_SERVER_NONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
R7677_SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
R7677_SERVER_FIRST = (
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
)
R7677_CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
R7677_SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def keys_256(password: bytes = b"pencil") -> ScramKeys:
    return ScramKeys.derive(password, R7677_SALT, 4096, "sha256")


def scram_256() -> sasl.Exchange:
    return sasl.Exchange("SCRAM-SHA-256", ScramSha256(nonce=lambda: R7677_SERVER_NONCE))


def test_rfc7677_exchange() -> None:
    exchange = scram_256()
    assert exchange.begin(R7677_CLIENT_FIRST) == NeedSecret("user")
    assert exchange.provide(keys_256()) == Challenge(R7677_SERVER_FIRST)
    assert exchange.receive(R7677_CLIENT_FINAL) == Challenge(R7677_SERVER_FINAL)
    assert exchange.receive(b"") == Proven("user")


def test_rfc7677_exchange_as_base64_lines_without_initial_response() -> None:
    exchange = scram_256()
    assert exchange.begin_line(None) == Challenge(b"")
    assert exchange.line(base64.b64encode(R7677_CLIENT_FIRST)) == NeedSecret("user")
    step = exchange.provide(keys_256())
    assert isinstance(step, Challenge) and base64.b64decode(step.base64) == R7677_SERVER_FIRST
    step = exchange.line(base64.b64encode(R7677_CLIENT_FINAL) + b"\r\n")
    assert step == Challenge(R7677_SERVER_FINAL)
    assert exchange.line(b"") == Proven("user")


def test_rfc5802_sha1_exchange() -> None:
    """The same machine with SHA-1 gives RFC 5802 §5's exchange exactly."""
    salt = base64.b64decode("QSXCR+Q6sek8bf92")
    exchange = sasl.Exchange("SCRAM-SHA-1", Scram("sha1", nonce=lambda: "3rfcNHYJY1ZVvWVs7j"))
    assert exchange.begin(b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL") == NeedSecret("user")
    assert exchange.provide(ScramKeys.derive(b"pencil", salt, 4096, "sha1")) == Challenge(
        b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
    )
    final = b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
    assert exchange.receive(final) == Challenge(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=")
    assert exchange.receive(b"") == Proven("user")


def test_wrong_password_is_rejected_after_the_proof() -> None:
    exchange = scram_256()
    exchange.begin(R7677_CLIENT_FIRST)
    exchange.provide(keys_256(b"not pencil"))
    assert exchange.receive(R7677_CLIENT_FINAL) == SaslError(Failure.REJECTED)
    assert exchange.receive(b"") == SaslError(Failure.MALFORMED)  # nothing after a failure


@pytest.mark.parametrize(
    ("first", "failure"),
    [
        (b"p=tls-unique,,n=user,r=abc", Failure.MALFORMED),  # channel binding: not offered
        (b"x,,n=user,r=abc", Failure.MALFORMED),
        (b"n,,m=ext,n=user,r=abc", Failure.MALFORMED),  # a mandatory extension
        (b"n,,n=user", Failure.MALFORMED),
        (b"n,,r=abc,n=user", Failure.MALFORMED),
        (b"n,,n=,r=abc", Failure.MALFORMED),
        (b"n,,n=us=er,r=abc", Failure.MALFORMED),  # "=" must be =2C or =3D
        (b"n,,n=user,r=", Failure.MALFORMED),
        (b"n,,n=user,r=a\x7fb", Failure.MALFORMED),
        (b"n,b=x,n=user,r=abc", Failure.MALFORMED),
        (b"n,a=other,n=user,r=abc", Failure.AUTHZID),
        (b"n,,n=\xff,r=abc", Failure.BAD_UTF8),
        (b"n,,", Failure.MALFORMED),
        (b"", Failure.MALFORMED),
    ],
)
def test_bad_client_first(first: bytes, failure: Failure) -> None:
    assert scram_256().begin(first) == SaslError(failure)


def test_authzid_equal_to_the_user_and_y_flag_are_fine() -> None:
    exchange = scram_256()
    assert exchange.begin(b"y,a=us=2Cer,n=us=2Cer,r=abc") == NeedSecret("us,er")
    step = exchange.provide(keys_256())
    assert step == Challenge(
        b"r=abc" + R7677_SERVER_NONCE.encode() + b",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    )


def _final_for(nonce: str, gs2: bytes = b"n,,", proof: bytes | None = None) -> bytes:
    without = b"c=" + base64.b64encode(gs2) + b",r=" + nonce.encode()
    return without + b",p=" + base64.b64encode(proof if proof is not None else b"\0" * 32)


@pytest.mark.parametrize(
    "final",
    [
        _final_for("rOprNGfwEbeRWgbNEkqO" + R7677_SERVER_NONCE, gs2=b"y,,"),  # binding changed
        _final_for("rOprNGfwEbeRWgbNEkqO"),  # the server's half of the nonce is missing
        _final_for("rOprNGfwEbeRWgbNEkqO" + R7677_SERVER_NONCE, proof=b"short"),
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO" + R7677_SERVER_NONCE.encode(),  # no proof
        b"r=x,c=biws,p=AAAA",
        b"c=bi!ws,r=x,p=AAAA",
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO" + R7677_SERVER_NONCE.encode() + b",p=not base64!",
    ],
)
def test_bad_client_final(final: bytes) -> None:
    exchange = scram_256()
    exchange.begin(R7677_CLIENT_FIRST)
    exchange.provide(keys_256())
    assert exchange.receive(final) == SaslError(Failure.MALFORMED)


def test_a_non_empty_answer_to_the_server_final_is_malformed() -> None:
    exchange = scram_256()
    exchange.begin(R7677_CLIENT_FIRST)
    exchange.provide(keys_256())
    exchange.receive(R7677_CLIENT_FINAL)
    assert exchange.receive(b"more") == SaslError(Failure.MALFORMED)


def test_default_server_nonces_differ_and_are_printable() -> None:
    firsts = []
    for _ in range(2):
        exchange = sasl.start("SCRAM-SHA-256")
        assert exchange is not None
        exchange.begin(R7677_CLIENT_FIRST)
        step = exchange.provide(keys_256())
        assert isinstance(step, Challenge)
        firsts.append(step.data)
    assert firsts[0] != firsts[1]
    for first in firsts:
        nonce = first.split(b",")[0][2:]
        assert nonce.startswith(b"rOprNGfwEbeRWgbNEkqO") and len(nonce) > 30
        assert all(0x21 <= c <= 0x7E and c != ord(",") for c in nonce)


def test_provide_before_the_client_first_is_a_misuse() -> None:
    from mailsrv.errors import CoreMisuse

    with pytest.raises(CoreMisuse):
        scram_256().provide(keys_256())
    plain = sasl.start("PLAIN")
    assert plain is not None
    with pytest.raises(CoreMisuse):
        plain.provide(keys_256())
    with pytest.raises(CoreMisuse):
        plain.refuse()


def test_saslname_decoding() -> None:
    assert decode_saslname("a=2Cb=3Dc") == "a,b=c"
    assert decode_saslname("a=2") is None
    assert decode_saslname("a,b") is None
    assert decode_saslname("") == ""


def test_keys_in_dovecot_form_both_ways() -> None:
    # Written by `doveadm pw -s SCRAM-SHA-256 -p secret` (Dovecot 2.3).
    value = (
        "4096,CZ3Dht9GQDXXvhvoXHqKUA==,qS6V+ukhjJfxBAK82TAsQRMcZf+aPh5RIiUlvTEPkR0=,"
        "/opWQzH+wU+SCXsG7huN4E8NkJDa7e0Auq6QELwTbNs="
    )
    keys = ScramKeys.parse(value, "sha256")
    assert keys == ScramKeys.derive(b"secret", keys.salt, 4096, "sha256")
    assert keys.dovecot() == value
    salted = hashlib.pbkdf2_hmac("sha256", b"secret", keys.salt, 4096)
    assert keys.server_key == hmac.digest(salted, b"Server Key", "sha256")
    for bad in ("4096,a,b", "x,AAAA,AAAA,AAAA", "0,AAAA,AAAA,AAAA", "4096,!!,AAAA,AAAA"):
        with pytest.raises(BadScramValue):
            ScramKeys.parse(bad, "sha256")
    with pytest.raises(BadScramValue, match="32 bytes"):
        ScramKeys.parse("4096,AAAA,AAAA,AAAA", "sha256")
