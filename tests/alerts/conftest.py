"""Fixtures for the alert tests: the loopback servers, a port that refuses, one that accepts
the connection and never answers, and an environment with no alert channel set."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import trustme
from alerts.loopback import SmtpServer, Webhook, free_port, serve_smtp, serve_webhook

from budget_pipeline.alerts.settings import SMTP_ENV, UI_URL_ENV
from budget_pipeline.config.alerts import SLACK_WEBHOOK_ENV, SMTP_PASSWORD_ENV

ALERT_ENV = [SLACK_WEBHOOK_ENV, SMTP_PASSWORD_ENV, UI_URL_ENV, *SMTP_ENV.values()]


@pytest.fixture(autouse=True)
def _no_alert_env(monkeypatch):
    """Tests start with no alert channel configured, whatever the developer's shell has."""
    for name in ALERT_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    with serve_webhook() as hook:
        yield hook


@pytest.fixture
def refused_port() -> int:
    """A loopback port with nothing listening: connections are refused at once."""
    return free_port()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that completes the TCP handshake (kernel backlog) and never says a word."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def trust_test_ca(tls_ca, tmp_path, monkeypatch):
    """The client's default SSL context trusts the test CA, as a deployment trusts its mail
    server's: OpenSSL reads SSL_CERT_FILE each time a default context is made."""
    path = tmp_path / "test-ca.pem"
    tls_ca.cert_pem.write_to_path(str(path))
    monkeypatch.setenv("SSL_CERT_FILE", str(path))


@pytest.fixture(params=["none", "starttls", "ssl"])
def smtp_server(request, tls_ca, trust_test_ca) -> Iterator[SmtpServer]:
    with serve_smtp(request.param, tls_ca) as server:
        yield server


@pytest.fixture
def plain_smtp(tls_ca) -> Iterator[SmtpServer]:
    with serve_smtp("none", tls_ca) as server:
        yield server
