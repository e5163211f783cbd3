"""Where an alert goes: a Slack incoming webhook (httpx) or e-mail over SMTP (smtplib).

``send`` raises :class:`DeliveryError` with a message fit for a log line; it never contains the
webhook URL or the SMTP password. Every network operation has a timeout; the total time of a
tick is bounded by :func:`budget_pipeline.alerts.dispatch.deliver`.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Literal, Protocol

from budget_pipeline.alerts.messages import Alert, slack_payload


class _RedactWebhookUrls(logging.Filter):
    """httpx logs every request's URL at INFO; a Slack webhook URL is a secret."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.urls:
            message = record.getMessage()
            for url in self.urls:
                message = message.replace(url, "<webhook url>")
            record.msg, record.args = message, ()
        return True


_REDACT = _RedactWebhookUrls()
logging.getLogger("httpx").addFilter(_REDACT)


class DeliveryError(RuntimeError):
    """A message that did not reach its channel (safe to log: no secrets in it)."""


class Channel(Protocol):
    name: str

    def send(self, alert: Alert) -> None: ...


class SlackWebhook:
    """A Slack incoming webhook: POST ``{"text": ..., "blocks": [...]}``, expect 2xx."""

    name = "slack"

    def __init__(self, url: str, *, timeout: float) -> None:
        self._url = url
        self._timeout = timeout
        _REDACT.urls.add(url)

    def __repr__(self) -> str:  # the URL is the secret: never show it
        return "SlackWebhook(<url from environment>)"

    def _scrub(self, text: str) -> str:
        return text.replace(self._url, "<webhook url>")

    def send(self, alert: Alert) -> None:
        import httpx  # on first delivery: with rich, ~0.15 s of every launched run's import

        try:
            response = httpx.post(
                self._url, json=slack_payload(alert), timeout=self._timeout, follow_redirects=False
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(
                f"Slack webhook unreachable: {type(exc).__name__}: {self._scrub(str(exc)) or 'no detail'}"
            ) from None
        if not response.is_success:
            body = self._scrub(response.text[:200].strip())
            raise DeliveryError(f"Slack webhook answered HTTP {response.status_code}: {body}")


class SmtpMail:
    """E-mail through an SMTP server: STARTTLS (default), implicit TLS or plain, optional login.

    TLS certificates are verified against the system's CA store (``SSL_CERT_FILE`` adds one).
    """

    name = "email"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        security: Literal["starttls", "ssl", "none"],
        sender: str,
        recipients: list[str],
        username: str | None = None,
        password: str | None = None,
        timeout: float,
    ) -> None:
        self.host, self.port, self.security = host, port, security
        self.sender, self.recipients = sender, list(recipients)
        self._username, self._password = username, password
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"SmtpMail({self.host}:{self.port}, {self.security}, to={self.recipients})"

    def message(self, alert: Alert) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = f"[budget_pipeline] {alert.title}"
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg["Date"] = formatdate(localtime=True)
        msg["Message-ID"] = make_msgid(domain="budget-pipeline.local")
        msg.set_content(alert.plain_text())
        return msg

    def send(self, alert: Alert) -> None:
        context = ssl.create_default_context()
        try:
            if self.security == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self._timeout, context=context
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self._timeout)
            with smtp:
                if self.security == "starttls":
                    smtp.starttls(context=context)
                if self._username:
                    smtp.login(self._username, self._password or "")
                smtp.send_message(self.message(alert))
        except (OSError, smtplib.SMTPException) as exc:
            detail = str(exc) or "no detail"
            if self._password:
                detail = detail.replace(self._password, "<password>")
            raise DeliveryError(
                f"SMTP {self.host}:{self.port} ({self.security}) failed: "
                f"{type(exc).__name__}: {detail}"
            ) from None
