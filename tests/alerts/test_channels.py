"""Slack webhook and SMTP delivery against real servers on loopback, and the time bound."""

from __future__ import annotations

import logging
import ssl
import time

import pytest
from alerts.loopback import LOGIN, PASSWORD, WEBHOOK_SECRET_PATH, serve_smtp

from budget_pipeline.alerts.channels import DeliveryError, SlackWebhook, SmtpMail
from budget_pipeline.alerts.dispatch import deliver
from budget_pipeline.alerts.messages import Alert

ALERT = Alert(
    kind="pause",
    key="pause:plan-1",
    title="Plan plan-1 pauses 1 ad set(s) or campaign(s)",
    lines=("• Spring <Sale> & more (120210000005002) in pool prospecting",),
    plan_id="plan-1",
    run_id="0123456789abcdef",
    link="http://127.0.0.1:3000/runs/0123456789abcdef",
)


def _mail(server, **overrides) -> SmtpMail:
    kwargs = dict(
        host=server.host,
        port=server.port,
        security=server.security,
        sender="budget@example.com",
        recipients=["marketing@example.com", "ops@example.com"],
        username=LOGIN,
        password=PASSWORD,
        timeout=2.0,
    )
    return SmtpMail(**{**kwargs, **overrides})


def test_slack_webhook_posts_text_and_blocks(webhook, caplog):
    caplog.set_level(logging.DEBUG)
    SlackWebhook(webhook.url, timeout=2).send(ALERT)
    assert "HTTP Request: POST <webhook url>" in caplog.text  # httpx logs the request...
    assert "s3cr3t" not in caplog.text  # ...never the secret webhook path
    assert webhook.paths == [WEBHOOK_SECRET_PATH]
    (post,) = webhook.posts
    # Slack's mrkdwn needs <, > and & escaped, and the run link in its <url|label> form
    assert "Spring &lt;Sale&gt; &amp; more (120210000005002)" in post["text"]
    assert "<http://127.0.0.1:3000/runs/0123456789abcdef|run 01234567>" in post["text"]
    assert post["text"].startswith("*Plan plan-1 pauses 1 ad set(s) or campaign(s)*")
    assert [b["type"] for b in post["blocks"]] == ["section", "section", "context"]


def test_slack_http_500_is_a_delivery_error_without_the_secret_url(webhook):
    webhook.status = 500
    with pytest.raises(DeliveryError, match="HTTP 500: internal_error") as info:
        SlackWebhook(webhook.url, timeout=2).send(ALERT)
    assert "s3cr3t" not in str(info.value) and webhook.posts == []


def test_slack_refused_fails_at_once(refused_port):
    start = time.monotonic()
    with pytest.raises(DeliveryError, match="unreachable: ConnectError"):
        SlackWebhook(f"http://127.0.0.1:{refused_port}/hook/s3cr3t", timeout=5).send(ALERT)
    assert time.monotonic() - start < 1.0


def test_slack_silent_server_times_out_after_the_timeout(silent_port):
    url = f"http://127.0.0.1:{silent_port}/hook/s3cr3t"
    start = time.monotonic()
    with pytest.raises(DeliveryError, match="ReadTimeout") as info:
        SlackWebhook(url, timeout=0.5).send(ALERT)
    elapsed = time.monotonic() - start
    assert 0.4 < elapsed < 2.0
    assert "s3cr3t" not in str(info.value)


def test_smtp_delivers_over_each_security_mode_with_login(smtp_server):
    _mail(smtp_server).send(ALERT)
    (mail,) = smtp_server.mailbox.messages
    assert mail["from"] == "budget@example.com"
    assert mail["to"] == ["marketing@example.com", "ops@example.com"]
    assert mail["tls"] is (smtp_server.security != "none")
    assert mail["login"] == LOGIN
    (parsed,) = smtp_server.mailbox.parsed()
    assert parsed["Subject"] == "[budget_pipeline] Plan plan-1 pauses 1 ad set(s) or campaign(s)"
    body = parsed.get_content()
    assert "Spring <Sale> & more (120210000005002)" in body  # plain text: no Slack escaping
    assert "Run: 0123456789abcdef — http://127.0.0.1:3000/runs/0123456789abcdef" in body


def test_smtp_without_login_when_no_username(plain_smtp):
    _mail(plain_smtp, username=None, password=None).send(ALERT)
    assert [m["login"] for m in plain_smtp.mailbox.messages] == [None]


def test_smtp_wrong_password_is_refused_and_not_repeated_in_the_error(plain_smtp):
    with pytest.raises(DeliveryError, match="SMTPAuthenticationError") as info:
        _mail(plain_smtp, password="hunter2-wrong").send(ALERT)
    assert "hunter2" not in str(info.value)
    assert plain_smtp.mailbox.messages == []


def test_starttls_refuses_a_certificate_the_client_does_not_trust(tls_ca):
    """Verification is on: without the test CA in SSL_CERT_FILE the handshake fails."""
    with serve_smtp("starttls", tls_ca) as server:
        with pytest.raises(DeliveryError, match="SSLCertVerificationError"):
            _mail(server).send(ALERT)
        assert server.mailbox.messages == []
    assert ssl.create_default_context().verify_mode == ssl.CERT_REQUIRED


def test_smtp_refused_and_silent_servers_fail_within_the_timeout(refused_port, silent_port):
    for port in (refused_port, silent_port):
        start = time.monotonic()
        with pytest.raises(DeliveryError, match=f"SMTP 127.0.0.1:{port}"):
            SmtpMail(
                host="127.0.0.1", port=port, security="starttls", sender="a@b.c",
                recipients=["d@e.f"], timeout=0.5,
            ).send(ALERT)  # fmt: skip
        assert time.monotonic() - start < 2.0


def test_dispatch_is_bounded_and_a_dead_channel_does_not_stop_the_other(silent_port, plain_smtp):
    """Slack hangs for longer than the tick may spend; mail still goes, in order, and the
    caller gets control back at the bound with the unsent messages reported."""
    second = Alert(kind="pause", key="pause:plan-2", title="Plan plan-2 pauses 2")
    slack = SlackWebhook(f"http://127.0.0.1:{silent_port}/hook", timeout=10)
    mail = _mail(plain_smtp, username=None, password=None)
    start = time.monotonic()
    results = deliver([(slack, [ALERT, second]), (mail, [ALERT, second])], max_seconds=1.0)
    elapsed = time.monotonic() - start
    assert 0.9 < elapsed < 1.5
    by_channel = {(d.channel, d.alert.key): d for d in results}
    assert len(results) == 4
    assert by_channel[("email", "pause:plan-1")].ok and by_channel[("email", "pause:plan-2")].ok
    assert not by_channel[("slack", "pause:plan-1")].ok
    assert "ran out" in by_channel[("slack", "pause:plan-2")].error
    subjects = [m["Subject"] for m in plain_smtp.mailbox.parsed()]
    assert subjects == [f"[budget_pipeline] {ALERT.title}", f"[budget_pipeline] {second.title}"]


def test_dispatch_turns_a_channel_bug_into_a_failed_delivery():
    class Broken:
        name = "broken"

        def send(self, alert):
            raise KeyError("oops")

    (result,) = deliver([(Broken(), [ALERT])], max_seconds=1)
    assert result.error == "KeyError: 'oops'"
