"""Real servers on loopback for the alert tests: a webhook receiver, an SMTP server (aiosmtpd;
plain, STARTTLS or implicit TLS with a throwaway CA). Fixtures in ``conftest.py``."""

from __future__ import annotations

import email
import email.message
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

WEBHOOK_SECRET_PATH = "/services/T000/B000/s3cr3t-webhook-token"
LOGIN, PASSWORD = "alerts@example.com", "correct horse battery staple"


@dataclass
class Webhook:
    """Captures every POST; ``status`` and ``hold`` choose how it answers."""

    url: str
    posts: list[dict] = field(default_factory=list)
    status: int = 200
    paths: list[str] = field(default_factory=list)
    hold: threading.Event | None = None  # while unset, every request waits (up to 30 s)

    def texts(self) -> list[str]:
        return [p["text"] for p in self.posts]


@contextmanager
def serve_webhook() -> Iterator[Webhook]:
    box: list[Webhook] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            hook = box[0]
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if hook.hold is not None:
                hook.hold.wait(30)
            hook.paths.append(self.path)
            if hook.status == 200:
                hook.posts.append(json.loads(body))
            reply = b"ok" if hook.status == 200 else b"internal_error"
            self.send_response(hook.status)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    box.append(Webhook(f"http://127.0.0.1:{server.server_port}{WEBHOOK_SECRET_PATH}"))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield box[0]
    finally:
        if box[0].hold is not None:
            box[0].hold.set()
        server.shutdown()
        server.server_close()


@dataclass
class Mailbox:
    messages: list[dict] = field(default_factory=list)

    def parsed(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(m["data"], policy=policy.default) for m in self.messages]

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "data": envelope.original_content or envelope.content,  # raw bytes
                "login": session.auth_data.login.decode() if session.auth_data else None,
                "tls": server.transport.get_extra_info("ssl_object") is not None,
            }
        )
        return "250 OK"


@dataclass
class SmtpServer:
    host: str
    port: int
    security: str  # "none" | "starttls" | "ssl"
    mailbox: Mailbox


def _authenticator(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == LOGIN
        and auth_data.password.decode() == PASSWORD
    )
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve_smtp(security: str, ca: trustme.CA) -> Iterator[SmtpServer]:
    """An SMTP server on loopback taking LOGIN/PLAIN auth; its certificate is signed by ``ca``."""
    mailbox = Mailbox()
    port = free_port()
    server_kwargs: dict = {"authenticator": _authenticator}
    controller_kwargs: dict = {}
    if security == "none":
        server_kwargs["auth_require_tls"] = False
    else:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        if security == "starttls":
            server_kwargs.update(tls_context=context, require_starttls=True)
        else:  # implicit TLS: the whole connection is encrypted from the first byte
            controller_kwargs["ssl_context"] = context
            server_kwargs["auth_require_tls"] = False
    controller = Controller(
        mailbox, hostname="127.0.0.1", port=port, server_kwargs=server_kwargs, **controller_kwargs
    )
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, security, mailbox)
    finally:
        controller.stop()
