"""TLS certificate faults as real clients see them: openssl s_client's verify codes, curl with
``--cacert``, and Python's ssl (imaplib, poplib, smtplib), set from the fixture
(``mail_server.faults.tls``) and over the REST API."""

from __future__ import annotations

import asyncio
import imaplib
import json
import logging
import poplib
import shutil
import smtplib
import ssl
import subprocess
from typing import Any

import pytest

from mailsrv.testing import AsyncMailServer, ThreadedMailServer

TOKEN = "tls-fault-token"

#: OpenSSL's verify result for each faulty certificate (s_client with the local CA trusted,
#: ``-verify_hostname localhost`` and ``-auth_level 2``).
VERIFY_CODES = {
    "expired": {10},  # X509_V_ERR_CERT_HAS_EXPIRED
    "not-yet-valid": {9},  # X509_V_ERR_CERT_NOT_YET_VALID
    "wrong-host": {62},  # X509_V_ERR_HOSTNAME_MISMATCH
    "self-signed": {18, 19},  # DEPTH_ZERO_SELF_SIGNED_CERT / SELF_SIGNED_CERT_IN_CHAIN
    "untrusted-ca": {20, 21},  # UNABLE_TO_GET_ISSUER_CERT_LOCALLY / UNABLE_TO_VERIFY_LEAF
    "weak-key": {66},  # X509_V_ERR_EE_KEY_TOO_SMALL: 1024-bit RSA at security level 2
}
#: What curl says (it exits 60 for every one of them).
CURL_REASONS = {
    "expired": "certificate has expired",
    "not-yet-valid": "certificate is not yet valid",
    "wrong-host": "no alternative certificate subject name matches",
    "self-signed": "self-signed certificate",
    "untrusted-ca": "unable to get local issuer certificate",
    "weak-key": "key too weak",
}
KINDS = tuple(VERIFY_CODES)

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")


def verify_code(server: ThreadedMailServer, port: int | None, starttls: str | None = None) -> int:
    """``openssl s_client``'s verify result for a handshake on ``port``."""
    assert port is not None
    args = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile"]
    args += [str(server.ca_file), "-verify_hostname", "localhost", "-auth_level", "2"]
    if starttls is not None:
        args += ["-starttls", starttls]
    out = subprocess.run(args, input=b"", capture_output=True, timeout=20).stdout.decode()
    codes = [line for line in out.splitlines() if "Verify return code:" in line]
    assert codes, out
    return int(codes[-1].split(":")[1].split()[0])


def curl_pop3s(server: ThreadedMailServer) -> subprocess.CompletedProcess[str]:
    url = f"pop3s://127.0.0.1:{server.ports.pop3s}/"
    args = ["curl", "-sS", "--cacert", str(server.ca_file), url, "-u", "alice:pw"]
    return subprocess.run(args, capture_output=True, text=True, timeout=20)


def api(server: ThreadedMailServer, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    url = f"http://{server.host}:{server.ports.http}/api/v1{path}"
    args = ["curl", "-sS", "-X", method, "-H", f"Authorization: Bearer {TOKEN}"]
    args += ["-w", "\n%{http_code}", url]
    if body is not None:
        args += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(body)]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=20).stdout
    text, _, status = out.rpartition("\n")
    return int(status), json.loads(text)


@needs_openssl
@pytest.mark.mail_server(services={"imap", "imaps"})
@pytest.mark.parametrize("kind", KINDS)
def test_s_client_sees_each_fault_on_imaps_then_the_good_one(
    mail_server: ThreadedMailServer, kind: str
) -> None:
    assert verify_code(mail_server, mail_server.ports.imaps) == 0
    fault = mail_server.faults.tls("imaps", kind)
    assert verify_code(mail_server, mail_server.ports.imaps) in VERIFY_CODES[kind]
    assert verify_code(mail_server, mail_server.ports.imaps) in VERIFY_CODES[kind]
    assert fault.hits == 2
    # Only that port: IMAP's STARTTLS still presents the good certificate.
    assert verify_code(mail_server, mail_server.ports.imap, starttls="imap") == 0
    mail_server.faults.remove(fault)
    assert verify_code(mail_server, mail_server.ports.imaps) == 0


@needs_openssl
@pytest.mark.mail_server(services={"imap", "pop3", "submission", "smtp"})
@pytest.mark.parametrize(
    ("service", "starttls"),
    [("imap", "imap"), ("pop3", "pop3"), ("submission", "smtp"), ("smtp", "smtp")],
)
def test_s_client_sees_the_fault_after_starttls(
    mail_server: ThreadedMailServer, service: str, starttls: str
) -> None:
    port = getattr(mail_server.ports, service)
    mail_server.faults.tls(service, "expired", times=1)
    assert verify_code(mail_server, port, starttls=starttls) == 10
    assert verify_code(mail_server, port, starttls=starttls) == 0  # times=1: spent
    assert mail_server.faults.active == []


@needs_curl
@pytest.mark.mail_server(services={"pop3s"})
@pytest.mark.parametrize("kind", KINDS)
def test_curl_with_cacert_refuses_each_fault(mail_server: ThreadedMailServer, kind: str) -> None:
    mail_server.deliver("alice", "Subject: hi\n\nhello\n")
    fault = mail_server.faults.tls("pop3s", kind)
    refused = curl_pop3s(mail_server)
    assert refused.returncode == 60, refused.stderr
    assert CURL_REASONS[kind] in refused.stderr
    mail_server.faults.remove(fault)
    listed = curl_pop3s(mail_server)
    assert listed.returncode == 0 and listed.stdout.startswith("1 "), listed.stderr


@pytest.mark.mail_server(services={"imaps"})
@pytest.mark.parametrize("kind", KINDS)
def test_imaplib_with_a_verifying_context_refuses(
    mail_server: ThreadedMailServer, kind: str
) -> None:
    mail_server.faults.tls("imaps", kind)
    # localhost, not 127.0.0.1: the name is checked too (and reported for wrong-host).
    with pytest.raises(ssl.SSLCertVerificationError) as raised:
        imaplib.IMAP4_SSL(
            "localhost", mail_server.ports.imaps, ssl_context=mail_server.client_ssl_context()
        )
    assert raised.value.verify_code in VERIFY_CODES[kind]
    mail_server.faults.clear()
    client = imaplib.IMAP4_SSL(
        "localhost", mail_server.ports.imaps, ssl_context=mail_server.client_ssl_context()
    )
    assert client.login("alice", "pw")[0] == "OK"
    client.logout()


@pytest.mark.mail_server(services={"pop3", "submission"})
def test_poplib_stls_and_smtplib_starttls_refuse(
    mail_server: ThreadedMailServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    mail_server.faults.tls("pop3", "wrong-host")
    mail_server.faults.tls("submission", "self-signed")
    pop = poplib.POP3("localhost", mail_server.ports.pop3, timeout=10)
    with pytest.raises(ssl.SSLCertVerificationError) as pop_raised:
        pop.stls(context=mail_server.client_ssl_context())
    assert pop_raised.value.verify_code == 62
    assert "Hostname mismatch" in pop_raised.value.verify_message
    smtp = smtplib.SMTP("localhost", mail_server.ports.submission, timeout=10)
    smtp.ehlo()
    with pytest.raises(ssl.SSLCertVerificationError) as smtp_raised:
        smtp.starttls(context=mail_server.client_ssl_context())
    assert smtp_raised.value.verify_code == 18
    smtp.close()
    # An unverifying client (the kind these faults exist to catch) goes on regardless.
    careless = ssl.create_default_context()
    careless.check_hostname, careless.verify_mode = False, ssl.CERT_NONE
    pop = poplib.POP3("localhost", mail_server.ports.pop3, timeout=10)
    pop.stls(context=careless)
    pop.user("alice")
    assert pop.pass_("pw").startswith(b"+OK")
    pop.quit()
    # A refused handshake is the client's doing: no error, no traceback on the terminal.
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


@needs_curl
@needs_openssl
@pytest.mark.mail_server(services={"imaps", "smtps", "http"}, http_token=TOKEN)
def test_tls_faults_over_the_rest_api(mail_server: ThreadedMailServer) -> None:
    body = {"protocol": "smtps", "action": "tls", "certificate": "not-yet-valid"}
    status, created = api(mail_server, "POST", "/faults", body)
    assert status == 201, created
    assert created["fault"] == {
        "id": created["id"],
        "protocol": "smtps",
        "action": "tls",
        "certificate": "not-yet-valid",
        "times": None,
        "hits": 0,
    }
    assert verify_code(mail_server, mail_server.ports.smtps) == 9
    status, listed = api(mail_server, "GET", "/faults")
    assert [(f["id"], f["hits"]) for f in listed["faults"]] == [(created["id"], 1)]
    status, _ = api(mail_server, "DELETE", f"/faults/{created['id']}")
    assert status == 200
    assert verify_code(mail_server, mail_server.ports.smtps) == 0


@needs_curl
@pytest.mark.mail_server(services={"imaps", "http"}, http_token=TOKEN)
@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"protocol": "lmtp", "certificate": "expired"}, "protocol must be one of imaps"),
        ({"protocol": "imaps", "certificate": "revoked"}, "certificate must be one of"),
        ({"protocol": "imaps"}, "certificate must be one of"),
        ({"protocol": "imaps", "certificate": "expired", "user": "a"}, "unknown field"),
        ({"protocol": "imaps", "certificate": "expired", "command": "X"}, "takes no command"),
        ({"protocol": "imaps", "certificate": "expired", "times": 0}, "times must be"),
    ],
)
def test_bad_tls_faults_are_a_400_naming_the_field(
    mail_server: ThreadedMailServer, body: dict[str, Any], reason: str
) -> None:
    status, answer = api(mail_server, "POST", "/faults", {"action": "tls", **body})
    assert status == 400 and reason in answer["error"], answer
    assert mail_server.faults.active == []


@pytest.mark.mail_server(services={"imap"}, tls=False)
def test_a_tls_fault_on_a_server_without_tls_is_refused(mail_server: ThreadedMailServer) -> None:
    with pytest.raises(ValueError, match="TLS is off"):
        mail_server.faults.tls("imap", "expired")


@pytest.mark.mail_server(services={"imaps", "pop3"})
async def test_tls_faults_on_the_async_fixture(mail_server_async: AsyncMailServer) -> None:
    """The same on the test's own loop (run under asyncio and uvloop, see conftest.py)."""
    server = mail_server_async
    server.faults.tls("imaps", "untrusted-ca", times=1)
    server.faults.tls("pop3", "weak-key", times=1)

    def handshakes() -> list[int | None]:
        codes: list[int | None] = []
        for _ in range(2):
            try:
                imaplib.IMAP4_SSL(
                    "localhost", server.ports.imaps, ssl_context=server.client_ssl_context()
                ).logout()
                codes.append(None)
            except ssl.SSLCertVerificationError as exc:
                codes.append(exc.verify_code)
        pop = poplib.POP3("localhost", server.ports.pop3, timeout=10)
        try:
            pop.stls(context=server.client_ssl_context())
            codes.append(None)
        except ssl.SSLCertVerificationError as exc:
            codes.append(exc.verify_code)
        return codes

    codes = await asyncio.to_thread(handshakes)
    assert codes[0] in VERIFY_CODES["untrusted-ca"] and codes[1:] == [None, 66]
    assert server.faults.active == []
