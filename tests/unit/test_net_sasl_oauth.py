"""OAUTHBEARER (RFC 7628) and XOAUTH2 on the shared sans-I/O SASL core, byte for byte."""

from __future__ import annotations

import base64
import json
import typing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsrv.net import sasl
from mailsrv.net.sasl import Bearer, Challenge, Failure, SaslError
from mailsrv.net.sasl_oauth import bearer_token

# RFC 7628 §4.1 (the token is the RFC's own example)
RFC7628_MESSAGE = (
    b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01"
    b"auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"
)


def start(name: str) -> sasl.Exchange:
    exchange = sasl.start(name)
    assert exchange is not None
    return exchange


def test_oauthbearer_rfc7628_example() -> None:
    step = start("OAUTHBEARER").begin(RFC7628_MESSAGE)
    assert step == Bearer("user@example.com", "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==")


def test_oauthbearer_without_authzid_names_nobody() -> None:
    assert start("OAUTHBEARER").begin(b"n,,\x01auth=bearer tok\x01\x01") == Bearer("", "tok")


def test_oauthbearer_refusal_sends_the_json_error_then_fails() -> None:
    exchange = start("OAUTHBEARER")
    assert exchange.begin(None) == Challenge(b"")
    assert isinstance(exchange.line(base64.b64encode(RFC7628_MESSAGE)), Bearer)
    error = exchange.refuse()
    assert isinstance(error, Challenge)
    assert json.loads(error.data) == {
        "status": "invalid_token",
        "schemes": "bearer",
        "scope": "mail",
    }
    assert exchange.receive(b"\x01") == SaslError(Failure.TOKEN_REFUSED)


@pytest.mark.parametrize(
    "message",
    [
        b"p=tls-unique,a=u,\x01auth=Bearer t\x01\x01",  # channel binding is not offered
        b"n,a=u,\x01auth=Bearer t\x01",  # one separator at the end
        b"n,a=u,auth=Bearer t\x01\x01",  # no separator after the GS2 header
        b"n,a=u,\x01host=x\x01\x01",  # no auth
        b"n,a=u,\x01auth=Basic dTpw\x01\x01",
        b"n,a=u,\x01auth=Bearer \x01\x01",
        b"n,a=u,\x01auth=Bearer a b\x01\x01",
        b"n,b=u,\x01auth=Bearer t\x01\x01",
        b"n,a=u=,\x01auth=Bearer t\x01\x01",
        b"n,a=u,\x01=x\x01auth=Bearer t\x01\x01",
        b"",
    ],
)
def test_oauthbearer_malformed(message: bytes) -> None:
    assert start("OAUTHBEARER").begin(message) == SaslError(Failure.MALFORMED)


def test_xoauth2() -> None:
    message = (
        b"user=someuser@example.com\x01"
        b"auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg\x01\x01"
    )
    exchange = start("XOAUTH2")
    assert exchange.begin(message) == Bearer(
        "someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg"
    )
    error = exchange.refuse()
    assert isinstance(error, Challenge) and json.loads(error.data)["status"] == "401"
    assert exchange.receive(b"") == SaslError(Failure.TOKEN_REFUSED)


@pytest.mark.parametrize(
    "message",
    [
        b"user=u\x01auth=Bearer t\x01",
        b"auth=Bearer t\x01\x01",
        b"user=u\x01\x01",
        b"user=\x01auth=Bearer t\x01\x01",
        b"user=u\x01auth=Bearer\x01\x01",
    ],
)
def test_xoauth2_malformed(message: bytes) -> None:
    assert start("XOAUTH2").begin(message) == SaslError(Failure.MALFORMED)


def test_bearer_token_scheme_is_case_insensitive() -> None:
    assert bearer_token("BEARER abc") == "abc"
    assert bearer_token("Bearer  abc ") == "abc"
    assert bearer_token("Bearer") is None
    assert bearer_token("Basic abc") is None


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(sorted(sasl.MECHANISMS)),
    messages=st.lists(st.binary(max_size=200), min_size=1, max_size=4),
)
def test_any_bytes_give_a_step_never_an_exception(name: str, messages: list[bytes]) -> None:
    """Fuzz: whatever a client sends, every mechanism answers with a step."""
    exchange = start(name)
    step = exchange.begin(messages[0])
    for message in messages[1:]:
        if isinstance(step, sasl.NeedSecret):
            step = exchange.provide(sasl.ScramKeys(4096, b"salt", b"k" * 32, b"s" * 32))
        elif isinstance(step, Bearer):
            step = exchange.refuse()
        if not isinstance(step, Challenge):
            break
        step = exchange.receive(message)
    assert isinstance(step, typing.get_args(sasl.Step))
