"""Certificates: made once, reused, re-made when the host names change; TLS 1.2+ contexts."""

from __future__ import annotations

import ipaddress
import ssl
import stat

import pytest
from cryptography import x509

from mailsrv.config import Config
from mailsrv.tls import client_ssl_context, ensure_certificates, server_ssl_context


def sans(path) -> set[str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {*ext.get_values_for_type(x509.DNSName)} | {
        str(ip) for ip in ext.get_values_for_type(x509.IPAddress)
    }


def test_makes_ca_and_server_cert(tmp_path):
    paths = ensure_certificates(tmp_path / "certs")
    for p in (paths.ca_file, paths.ca_key, paths.cert_file, paths.key_file):
        assert p.exists()
    assert stat.S_IMODE(paths.ca_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.key_file.stat().st_mode) == 0o600
    assert sans(paths.cert_file) == {"localhost", "127.0.0.1", "::1"}
    ca = x509.load_pem_x509_certificate(paths.ca_file.read_bytes())
    server = x509.load_pem_x509_certificate(paths.cert_file.read_bytes())
    server.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert server.public_key().curve.name == "secp256r1"
    assert not list(tmp_path.glob("certs/.*")), "no temporary files left behind"


def test_reused_unless_forced(tmp_path):
    paths = ensure_certificates(tmp_path)
    ca, cert = paths.ca_file.read_bytes(), paths.cert_file.read_bytes()
    ensure_certificates(tmp_path)
    assert (paths.ca_file.read_bytes(), paths.cert_file.read_bytes()) == (ca, cert)
    ensure_certificates(tmp_path, force=True)
    assert paths.ca_file.read_bytes() != ca
    assert paths.cert_file.read_bytes() != cert


def test_new_hostname_reissues_server_cert_with_same_ca(tmp_path):
    paths = ensure_certificates(tmp_path)
    ca = paths.ca_file.read_bytes()
    ensure_certificates(tmp_path, ["mail.example.test", "192.0.2.7"])
    assert paths.ca_file.read_bytes() == ca
    assert {"mail.example.test", "192.0.2.7"} <= sans(paths.cert_file)
    before = paths.cert_file.read_bytes()
    ensure_certificates(tmp_path, ["MAIL.example.test"])  # already covered, case-insensitively
    assert paths.cert_file.read_bytes() == before


def test_broken_files_are_replaced(tmp_path):
    paths = ensure_certificates(tmp_path)
    paths.cert_file.write_text("garbage")
    ensure_certificates(tmp_path)
    x509.load_pem_x509_certificate(paths.cert_file.read_bytes())
    paths.ca_key.write_text("garbage")
    ensure_certificates(tmp_path)
    server = x509.load_pem_x509_certificate(paths.cert_file.read_bytes())
    server.verify_directly_issued_by(x509.load_pem_x509_certificate(paths.ca_file.read_bytes()))


def test_server_context_is_cached_and_modern(tmp_path):
    config = Config(certs_dir=tmp_path)
    ctx = server_ssl_context(config)
    assert server_ssl_context(config) is ctx
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    names = {c["name"] for c in ctx.get_ciphers()}
    assert not any("CBC" in n or n.endswith("-SHA") for n in names if not n.startswith("TLS_"))
    ensure_certificates(tmp_path, force=True)
    assert server_ssl_context(config) is not ctx, "a re-made certificate is picked up"


async def test_client_context_verifies_only_our_ca(tmp_path):
    import asyncio

    ours = ensure_certificates(tmp_path / "a")
    other = ensure_certificates(tmp_path / "b")
    server_ctx = server_ssl_context(Config(certs_dir=tmp_path / "a"))

    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(greet, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        for host in ("localhost", "127.0.0.1"):
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=client_ssl_context(ours.ca_file), server_hostname=host
            )
            assert await reader.read() == b"hello"
            writer.close()
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.open_connection(
                "127.0.0.1",
                port,
                ssl=client_ssl_context(other.ca_file),
                server_hostname="localhost",
            )
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.open_connection(
                "127.0.0.1",
                port,
                ssl=client_ssl_context(ours.ca_file),
                server_hostname="not-us.example",
            )
    finally:
        server.close()
        await server.wait_closed()


def test_ip_sans_are_ip_addresses(tmp_path):
    paths = ensure_certificates(tmp_path, ["::1", "10.1.2.3"])
    cert = x509.load_pem_x509_certificate(paths.cert_file.read_bytes())
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    ips = ext.get_values_for_type(x509.IPAddress)
    assert ipaddress.ip_address("10.1.2.3") in ips
    assert ips.count(ipaddress.ip_address("::1")) == 1
