"""Which channels are on: the pools file's ``alerts:`` section plus the environment.

Secrets come only from the environment. A channel the pools file names is configured by the
file alone (its secret from the variable it names); a channel the file does not name is on
when its environment variables are set:

=================================== ======================================================
``BUDGET_PIPELINE_SLACK_WEBHOOK_URL`` Slack incoming-webhook URL (secret); set = Slack on
``BUDGET_PIPELINE_SMTP_HOST``         SMTP server; set = e-mail on (needs FROM and TO)
``BUDGET_PIPELINE_SMTP_PORT``         default 587 (starttls), 465 (ssl), 25 (none)
``BUDGET_PIPELINE_SMTP_SECURITY``     ``starttls`` (default), ``ssl`` or ``none``
``BUDGET_PIPELINE_SMTP_USERNAME``     login name; unset = no login
``BUDGET_PIPELINE_SMTP_PASSWORD``     login password (secret)
``BUDGET_PIPELINE_ALERT_EMAIL_FROM``  sender address
``BUDGET_PIPELINE_ALERT_EMAIL_TO``    recipients, comma-separated
``BUDGET_PIPELINE_UI_URL``            Dagster UI base for links, default http://127.0.0.1:3000
=================================== ======================================================

Nothing configured: no channel, alerts off, nothing sent. A bad value raises
:class:`ConfigError` naming the field (or variable) and the value, never a secret's value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from budget_pipeline.alerts.channels import Channel, SlackWebhook, SmtpMail
from budget_pipeline.config.alerts import (
    SLACK_WEBHOOK_ENV,
    SMTP_PASSWORD_ENV,
    AlertsConfig,
    EmailConfig,
)
from budget_pipeline.config.loading import ConfigError

UI_URL_ENV = "BUDGET_PIPELINE_UI_URL"
DEFAULT_UI_URL = "http://127.0.0.1:3000"
SMTP_ENV = {
    "host": "BUDGET_PIPELINE_SMTP_HOST",
    "port": "BUDGET_PIPELINE_SMTP_PORT",
    "security": "BUDGET_PIPELINE_SMTP_SECURITY",
    "username": "BUDGET_PIPELINE_SMTP_USERNAME",
    "from_address": "BUDGET_PIPELINE_ALERT_EMAIL_FROM",
    "to": "BUDGET_PIPELINE_ALERT_EMAIL_TO",
}


@dataclass(frozen=True)
class AlertSettings:
    channels: tuple[Channel, ...]
    events: frozenset[str]
    timeout_seconds: float
    max_seconds_per_tick: float
    ui_url: str

    def wants(self, kind: str) -> bool:
        """Is there a channel to tell, and does the configuration ask for this kind?"""
        return bool(self.channels) and kind in self.events


def _env(environ: Mapping[str, str], name: str) -> str:
    return (environ.get(name) or "").strip()


def _slack(config: AlertsConfig, environ: Mapping[str, str]) -> SlackWebhook | None:
    var = config.slack.webhook_url_env if config.slack else SLACK_WEBHOOK_ENV
    url = _env(environ, var)
    if not url:
        if config.slack is not None:
            raise ConfigError(
                f"alerts.slack.webhook_url_env: environment variable {var} is unset or empty; "
                "it must hold the Slack incoming-webhook URL"
            )
        return None
    if not url.startswith(("https://", "http://")) or len(url.split("/", 3)) < 4:
        # the value is a secret: say what is wrong without showing it
        raise ConfigError(f"{var}: not an http(s) webhook URL (value hidden, {len(url)} chars)")
    return SlackWebhook(url, timeout=config.timeout_seconds)


def _email_from_env(environ: Mapping[str, str]) -> EmailConfig | None:
    values = {field: _env(environ, var) for field, var in SMTP_ENV.items()}
    if not values["host"]:
        return None
    data: dict[str, object] = {k: v for k, v in values.items() if v}
    if "to" in data:
        data["to"] = [a.strip() for a in str(data["to"]).split(",") if a.strip()]
    try:
        return EmailConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            shown = repr(err.get("input")) if field in values else ""
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(
                f"  - {SMTP_ENV.get(field, field)}: {msg}" + (f" (got {shown})" if shown else "")
            )
        raise ConfigError("e-mail alerts from the environment:\n" + "\n".join(problems)) from None


def _email(config: AlertsConfig, environ: Mapping[str, str]) -> SmtpMail | None:
    email = config.email or _email_from_env(environ)
    if email is None:
        return None
    username = email.username
    password = _env(environ, email.password_env)
    if username and not password:
        where = "alerts.email.password_env" if config.email else SMTP_PASSWORD_ENV
        raise ConfigError(
            f"{where}: e-mail login {username!r} needs a password, but environment variable "
            f"{email.password_env} is unset or empty"
        )
    return SmtpMail(
        host=email.host,
        port=email.effective_port,
        security=email.security,
        sender=email.from_address,
        recipients=list(email.to),
        username=username,
        password=password or None,
        timeout=config.timeout_seconds,
    )


def resolve_alerts(config: AlertsConfig | None, environ: Mapping[str, str]) -> AlertSettings:
    """The channels and events in force for ``config`` (None: no ``alerts:`` section)."""
    config = config or AlertsConfig()
    ui_url = _env(environ, UI_URL_ENV) or DEFAULT_UI_URL
    if not ui_url.startswith(("http://", "https://")):
        raise ConfigError(f"{UI_URL_ENV}: expected an http(s) URL, got {ui_url!r}")
    channels: tuple[Channel, ...] = ()
    if config.enabled:
        channels = tuple(c for c in (_slack(config, environ), _email(config, environ)) if c)
    return AlertSettings(
        channels=channels,
        events=frozenset(config.events),
        timeout_seconds=config.timeout_seconds,
        max_seconds_per_tick=config.max_seconds_per_tick,
        ui_url=ui_url.rstrip("/"),
    )
