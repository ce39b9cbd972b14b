"""Two hosts on one Maildir behind nginx's mail proxy, on one machine.

Hosts 127.0.0.2 and 127.0.0.3 run ``mailsrv serve`` as real processes with one config (the same
ports, root and users file, ``watch = "poll"``: each sees the other's changes only through the
filesystem); nginx (Debian's nginx-light with libnginx-mod-mail) listens on 127.0.0.1 with a
config of its own and asks 127.0.0.2's ``/auth/nginx`` where each login goes. Logins through
nginx land on the user's host; mail delivered on one host is seen through the other; when a
host is killed its users log in on the other, and when it is back new logins return to it.

nginx's ``mail`` block is docs/deploy.md's example as written (its TLS lines too), with this
machine's addresses, ports and the project's certificates put in: clients log in through it
over IMAPS, POP3S and STARTTLS/STLS as well as in clear, verifying the project's CA.
"""

from __future__ import annotations

import contextlib
import imaplib
import json
import poplib
import shutil
import smtplib
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from mailsrv.tls import ensure_certificates
from tests.cluster_hosts import HOSTS, free_port, free_ports, require_hosts, users_of
from tests.server_process import ServerProcess, start_server

pytestmark = pytest.mark.timeout(180)

TOKEN = "cluster-nginx-token"
HOST_A, HOST_B = HOSTS
NGINX_HOST = "127.0.0.1"
DEPLOY_DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
MODULE_DIRS = ("/usr/lib/nginx/modules", "/usr/share/nginx/modules", "/usr/lib64/nginx/modules")
#: How long a condition polled for may take before the test fails (failover promises 10 s).
PATIENCE = 30.0

T = TypeVar("T")


def eventually(check: Callable[[], T], what: str, patience: float = PATIENCE) -> T:
    """``check()`` once it returns something true without raising; fails after ``patience``."""
    deadline = time.monotonic() + patience
    last: object = None
    while True:
        try:
            result = check()
            if result:
                return result
            last = result
        except Exception as exc:  # the condition is not met yet: a refused login, a lost proxy
            last = exc
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: still not so after {patience:g} s (last: {last!r})")
        time.sleep(0.2)


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )
    if found is None:
        pytest.skip(
            "nginx is not installed (Debian: apt-get install nginx-light libnginx-mod-mail)"
        )
    return found


def mail_module() -> str:
    """``load_module ...;`` for a dynamic mail module, or nothing when it is built in."""
    for folder in MODULE_DIRS:
        path = Path(folder) / "ngx_mail_module.so"
        if path.exists():
            return f"load_module {path};"
    return ""


@dataclass
class Nginx:
    proc: subprocess.Popen[bytes]
    ports: dict[str, int]
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def auth_proxy(prefix: Path, port: int, consoles: list[str]) -> str:
    """An HTTP proxy in nginx in front of the hosts' consoles (the first, then the others as
    backups), as docs/deploy.md has it: auth_http takes one address."""
    servers = "".join(
        f"        server {c}{' backup' if n else ''};\n" for n, c in enumerate(consoles)
    )
    return f"""http {{
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    upstream mailsrv_auth {{
{servers}    }}
    server {{
        listen {NGINX_HOST}:{port};
        access_log off;
        location = /auth/nginx {{
            proxy_pass http://mailsrv_auth;
            proxy_set_header Host localhost;
            proxy_connect_timeout 1s;
        }}
    }}
}}
"""


def example_mail_block(replacements: dict[str, str]) -> str:
    """The ``mail { ... }`` block of docs/deploy.md's nginx.conf, each key of ``replacements``
    (which must be there: the test follows the example) replaced by its value."""
    example = DEPLOY_DOC.read_text().split("```nginx\n", 1)[1].split("\n```", 1)[0]
    block = example[example.index("\nmail {") + 1 :]
    for old, new in replacements.items():
        assert block.count(old) == 1, f"docs/deploy.md's nginx.conf has no (one) {old!r}"
        block = block.replace(old, new)
    return block


def start_nginx(prefix: Path, certs: Path, auth_url: str, consoles: Sequence[str] = ()) -> Nginx:
    """nginx's mail proxy on 127.0.0.1 (docs/deploy.md's, with the certificates in ``certs``);
    auth_http to ``auth_url``, or with ``consoles`` to its own HTTP proxy in front of them."""
    binary = nginx_binary()
    prefix.mkdir(parents=True, exist_ok=True)
    names = ("imap", "imaps", "pop3", "pop3s", "smtp", "http")
    ports = {name: free_port([NGINX_HOST]) for name in names}
    http_block = ""
    if consoles:
        http_block = auth_proxy(prefix, ports["http"], list(consoles))
        auth_url = f"http://{NGINX_HOST}:{ports['http']}/auth/nginx"
    mail = example_mail_block(
        {
            "auth_http 127.0.0.1:9025/auth/nginx;": f"auth_http {auth_url};",
            "X-Mailsrv-Token a-long-random-secret;": f"X-Mailsrv-Token {TOKEN};",
            "/etc/ssl/mail.example.org.pem;": f"{certs / 'server.pem'};",
            "/etc/ssl/mail.example.org.key;": f"{certs / 'server-key.pem'};",
            "listen 143;": f"listen {NGINX_HOST}:{ports['imap']};",
            "listen 993 ssl;": f"listen {NGINX_HOST}:{ports['imaps']} ssl;",
            "listen 110;": f"listen {NGINX_HOST}:{ports['pop3']};",
            "listen 995 ssl;": f"listen {NGINX_HOST}:{ports['pop3s']} ssl;",
            "listen 587;": f"listen {NGINX_HOST}:{ports['smtp']};",
        }
    )
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"""{mail_module()}
daemon off;
master_process off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 128; }}
{http_block}
{mail}
"""
    )
    imap = ports["imap"]
    base = [binary, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)]
    check = subprocess.run([*base, "-t"], capture_output=True, text=True, check=False)
    if check.returncode != 0:
        if 'unknown directive "mail"' in check.stderr or "ngx_mail_module" in check.stderr:
            pytest.skip(f"nginx has no mail module (Debian: libnginx-mod-mail): {check.stderr}")
        pytest.fail(f"nginx refused the test's config:\n{check.stderr}")
    log = prefix / "stderr.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(base, stdout=out, stderr=subprocess.STDOUT)
    del ports["http"]
    nginx = Nginx(proc, ports, prefix / "error.log")

    def listening() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"nginx stopped:\n{log.read_text()}\n{nginx.log.read_text()}")
        with socket.create_connection((NGINX_HOST, imap), timeout=1):
            return True

    eventually(listening, "nginx listens")
    return nginx


@dataclass
class Cluster:
    workdir: Path
    maildir: Path
    config: Path
    ports: dict[str, int]
    hosts: dict[str, ServerProcess]
    users: dict[str, list[str]]  # host -> users whose first host it is
    nginx: Nginx | None = None

    @property
    def proxy_ports(self) -> dict[str, int]:
        assert self.nginx is not None, "nginx is not started"
        return self.nginx.ports

    def start_host(self, host: str) -> ServerProcess:
        self.hosts[host] = start_server(
            self.maildir,
            self.workdir,
            "--config",
            str(self.config),
            "--host",
            host,
            name=f"host-{host}",
            http=True,
            dev=False,
            ephemeral=False,
        )
        return self.hosts[host]

    def sessions_on(self, host: str) -> list[dict[str, object]]:
        """The live sessions of ``host``, from its REST API."""
        url = f"http://{host}:{self.ports['http']}/api/v1/sessions"
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310 - our own server
            return list(json.load(resp)["sessions"])

    def serving(self, user: str, protocol: str) -> list[str]:
        """The hosts with a live ``protocol`` session of ``user``."""
        return [
            host
            for host, proc in self.hosts.items()
            if proc.proc.poll() is None
            and any(s["user"] == user and s["protocol"] == protocol for s in self.sessions_on(host))
        ]

    def serving_soon(self, user: str, protocol: str) -> list[str]:
        """``serving`` once it names a host (a session is listed a moment after login), or []."""
        for _ in range(25):
            hosts = self.serving(user, protocol)
            if hosts:
                return hosts
            time.sleep(0.2)
        return []

    @property
    def certs(self) -> Path:
        """The project's CA and server certificate (``mailsrv certs``), which nginx shows."""
        return self.workdir / "certs"

    def tls(self) -> ssl.SSLContext:
        """A client's TLS context that trusts the project's CA alone (and checks the name)."""
        return ssl.create_default_context(cafile=str(self.certs / "ca.pem"))

    def imap(self) -> imaplib.IMAP4:
        return imaplib.IMAP4(NGINX_HOST, self.proxy_ports["imap"], timeout=10)

    def pop3(self) -> poplib.POP3:
        return poplib.POP3(NGINX_HOST, self.proxy_ports["pop3"], timeout=10)


def password(user: str) -> str:
    return f"pw {user}%"  # a space and a "%": nginx escapes both in Auth-Pass


@pytest.fixture
def cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """Both hosts and nginx; nginx asks 127.0.0.2's console, or with the parameter "proxy"
    its own HTTP proxy in front of both consoles (127.0.0.2 first, 127.0.0.3 its backup)."""
    proxy = getattr(request, "param", "direct") == "proxy"
    nginx_binary()  # skip before starting anything when nginx is missing
    require_hosts()
    workdir, maildir = tmp_path / "work", tmp_path / "mail"
    workdir.mkdir()
    users = {host: users_of(host, 2) for host in HOSTS}
    (workdir / "users").write_text(
        "".join(f"{u}:{{PLAIN}}{password(u)}\n" for us in users.values() for u in us)
    )
    imap, pop3, smtp, http = free_ports(4)
    ports = {"imap": imap, "pop3": pop3, "smtp": smtp, "http": http}
    config = workdir / "mailsrv.toml"
    off = ("submission", "smtps", "pop3s", "imaps", "lmtp")
    config.write_text(
        f"""cluster_backends = ["{HOST_A}", "{HOST_B}"]
http_port = {http}
http_token = "{TOKEN}"
watch = "poll"
poll_interval = 0.2

[ports]
imap = {imap}
pop3 = {pop3}
smtp = {smtp}
"""
        + "".join(f"{name} = -1\n" for name in off)
        + "\n[limits]\nauth_failure_delay = 0.0\n"
    )
    c = Cluster(workdir, maildir, config, ports, {}, users)
    try:
        for host in HOSTS:
            c.start_host(host)
        consoles = [f"{host}:{http}" for host in HOSTS] if proxy else []
        ensure_certificates(c.certs)  # the hosts made them already (--certs): no change
        auth = f"http://{HOST_A}:{http}/auth/nginx"
        c.nginx = start_nginx(tmp_path / "nginx", c.certs, auth, consoles)
        yield c
    finally:
        if c.nginx is not None:
            c.nginx.stop()
        for proc in c.hosts.values():
            proc.stop()


def login_imap(c: Cluster, user: str) -> imaplib.IMAP4:
    client = c.imap()
    try:
        client.login(user, password(user))
    except BaseException:
        with contextlib.suppress(Exception):
            client.shutdown()
        raise
    return client


def test_logins_and_mail_through_nginx(cluster: Cluster) -> None:
    c = cluster
    # IMAP: every user lands on its own host.
    for host, users in c.users.items():
        for user in users:
            client = login_imap(c, user)
            try:
                assert client.select("INBOX")[0] == "OK"
                assert c.serving_soon(user, "imap") == [host]
            finally:
                client.logout()
    # A wrong password is refused, with the reason; after Auth-Wait nginx lets the client try
    # again on the same connection, and the right password gets it in.
    user_a = c.users[HOST_A][0]
    client = c.imap()
    with pytest.raises(imaplib.IMAP4.error, match="Authentication failed"):
        client.login(user_a, "wrong")
    assert client.login(user_a, password(user_a))[0] == "OK"
    client.logout()
    # POP3 the same.
    user_b = c.users[HOST_B][0]
    pop = c.pop3()
    pop.user(user_b)
    pop.pass_(password(user_b))
    assert c.serving_soon(user_b, "pop3") == [HOST_B]
    pop.quit()
    pop = c.pop3()
    pop.user(user_b)
    with pytest.raises(poplib.error_proto, match="Authentication failed"):
        pop.pass_("wrong")
    with contextlib.suppress(Exception):
        pop.quit()
    # SMTP straight to either host, and through nginx with AUTH: all for a user of host A ...
    imap = login_imap(c, user_a)  # ... whose IMAP session (on A) sees each message arrive
    try:
        imap.select("INBOX")
        sent = 0
        for host in HOSTS:
            with smtplib.SMTP(host, c.ports["smtp"], timeout=10) as smtp:
                smtp.sendmail(
                    "x@example.org", [f"{user_a}@localhost"], f"Subject: via {host}\r\n\r\nhi\r\n"
                )
            sent += 1
        with smtplib.SMTP(NGINX_HOST, c.proxy_ports["smtp"], timeout=10) as smtp:
            smtp.ehlo("client.test")
            smtp.login(user_a, password(user_a))
            smtp.sendmail(
                f"{user_a}@localhost", [f"{user_a}@localhost"], "Subject: via nginx\r\n\r\nhi\r\n"
            )
        sent += 1

        def all_seen() -> bool:
            imap.noop()
            typ, data = imap.search(None, "ALL")
            return typ == "OK" and len(data[0].split()) == sent

        eventually(all_seen, "the IMAP session through nginx sees mail delivered on both hosts")
        typ, data = imap.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert typ == "OK"
        subjects = {part[1].strip().decode() for part in data if isinstance(part, tuple)}
        assert subjects == {f"Subject: via {h}" for h in HOSTS} | {"Subject: via nginx"}
        # SQLite's WAL needs one machine: each host keeps its own message cache.
        assert imap.fetch("1:*", "(ENVELOPE BODYSTRUCTURE)")[0] == "OK"
        caches = sorted(p.name for p in (c.maildir / user_a).glob("mailsrv-cache*.sqlite"))
        assert caches == [f"mailsrv-cache.{HOST_A}.sqlite"]
    finally:
        imap.logout()


def test_logins_over_tls_through_nginx(cluster: Cluster) -> None:
    """docs/deploy.md's TLS lines: IMAPS and POP3S (``listen ... ssl``), STARTTLS and STLS on
    the plain ports and STARTTLS before SMTP AUTH (``starttls on``), all with the project's
    certificate, which a client verifies against the project's CA. nginx logs in to the hosts
    in clear; each login still lands on its user's host."""
    c = cluster
    tls, ports = c.tls(), c.proxy_ports
    user_a, user_b = c.users[HOST_A][0], c.users[HOST_B][0]
    served = (c.certs / "server.pem").read_text().split("-----END CERTIFICATE-----")[0]

    imaps = imaplib.IMAP4_SSL(NGINX_HOST, ports["imaps"], ssl_context=tls, timeout=10)
    try:
        peer = imaps.sock.getpeercert(binary_form=True)
        assert peer is not None and ssl.DER_cert_to_PEM_cert(peer).startswith(served)
        imaps.login(user_a, password(user_a))
        assert imaps.select("INBOX")[0] == "OK"
        assert c.serving_soon(user_a, "imap") == [HOST_A]
    finally:
        imaps.logout()

    client = c.imap()
    try:
        assert "STARTTLS" in client.capabilities
        client.starttls(ssl_context=tls)
        assert "STARTTLS" not in client.capabilities
        client.login(user_b, password(user_b))
        assert c.serving_soon(user_b, "imap") == [HOST_B]
    finally:
        client.logout()

    pop = poplib.POP3_SSL(NGINX_HOST, ports["pop3s"], context=tls, timeout=10)
    pop.user(user_b)
    pop.pass_(password(user_b))
    assert c.serving_soon(user_b, "pop3") == [HOST_B]
    pop.quit()

    pop = c.pop3()
    assert "STLS" in pop.capa()
    pop.stls(context=tls)
    pop.user(user_a)
    pop.pass_(password(user_a))
    assert pop.stat()[0] == 0
    pop.quit()

    with smtplib.SMTP(NGINX_HOST, ports["smtp"], timeout=10) as smtp:
        smtp.ehlo("client.test")
        assert smtp.has_extn("starttls")
        smtp.starttls(context=tls)
        smtp.ehlo("client.test")
        smtp.login(user_a, password(user_a))
        smtp.sendmail(
            f"{user_a}@localhost", [f"{user_a}@localhost"], "Subject: over tls\r\n\r\nhi\r\n"
        )

    def arrived() -> bool:
        pop = poplib.POP3_SSL(NGINX_HOST, ports["pop3s"], context=tls, timeout=10)
        try:
            pop.user(user_a)
            pop.pass_(password(user_a))
            return pop.stat()[0] == 1
        finally:
            pop.quit()

    eventually(arrived, "the message sent over STARTTLS through nginx in the user's maildrop")


def test_a_killed_host_fails_over_and_comes_back(cluster: Cluster) -> None:
    c = cluster
    user_b = c.users[HOST_B][0]
    with smtplib.SMTP(HOST_B, c.ports["smtp"], timeout=10) as smtp:
        smtp.sendmail("x@example.org", [f"{user_b}@localhost"], "Subject: before\r\n\r\nhi\r\n")
    c.hosts[HOST_B].kill()
    everyone = [u for users in c.users.values() for u in users]

    def logs_in(user: str) -> bool:
        client = login_imap(c, user)
        try:
            typ, data = client.select("INBOX")
            return typ == "OK" and (user != user_b or int(data[0]) == 1)  # and sees its mail
        finally:
            client.logout()

    for user in everyone:
        eventually(lambda u=user: logs_in(u), f"{user} logs in through nginx with {HOST_B} down")
    # A user of the dead host is served by the other one now.
    client = login_imap(c, user_b)
    try:
        assert c.serving_soon(user_b, "imap") == [HOST_A]
    finally:
        client.logout()
    pop = c.pop3()
    pop.user(user_b)
    pop.pass_(password(user_b))
    assert pop.stat()[0] == 1
    pop.quit()
    # Back again: new logins return to it.
    c.start_host(HOST_B)

    def back_home() -> bool:
        client = login_imap(c, user_b)
        try:
            return c.serving_soon(user_b, "imap") == [HOST_B]
        finally:
            client.logout()

    eventually(back_home, f"new logins of {user_b} return to {HOST_B}")


@pytest.mark.parametrize("cluster", ["proxy"], indirect=True)
def test_the_host_nginx_asks_can_fail_too(cluster: Cluster) -> None:
    """With docs/deploy.md's HTTP proxy in front of the consoles, 127.0.0.2 (the host asked
    first) is killed: the other answers /auth/nginx and takes every user."""
    c = cluster
    user_a = c.users[HOST_A][0]
    client = login_imap(c, user_a)
    try:
        assert c.serving_soon(user_a, "imap") == [HOST_A]
    finally:
        client.logout()
    c.hosts[HOST_A].kill()
    everyone = [u for users in c.users.values() for u in users]
    for user in everyone:
        eventually(lambda u=user: login_imap(c, u).logout(), f"{user} logs in with {HOST_A} down")
    client = login_imap(c, user_a)
    try:
        assert c.serving_soon(user_a, "imap") == [HOST_B]
    finally:
        client.logout()
    # A wrong password is still refused, now by the other host.
    client = c.imap()
    with pytest.raises(imaplib.IMAP4.error, match="Authentication failed"):
        client.login(user_a, "wrong")
    client.shutdown()
