"""The optional ``alerts:`` section of the pools file: which events alert, on which channels.

Secrets never live in the file: it names the *environment variables* that hold them (the
Slack webhook URL, the SMTP password). Without an ``alerts:`` section the channels come from
the environment alone (see :mod:`budget_pipeline.alerts.settings`); with nothing configured
anywhere, alerts are off. Example::

    alerts:
      events: [pause, check_failed, run_failed, execution_partial, score_drift]
      slack:
        webhook_url_env: BUDGET_PIPELINE_SLACK_WEBHOOK_URL
      email:
        host: smtp.example.com
        port: 587                   # default: 587, 465 for ssl, 25 for none
        security: starttls          # starttls | ssl | none
        username: alerts@example.com
        password_env: BUDGET_PIPELINE_SMTP_PASSWORD
        from_address: alerts@example.com
        to: [marketing@example.com]
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

EventKind = Literal["pause", "check_failed", "run_failed", "execution_partial", "score_drift"]
EVENT_KINDS: tuple[str, ...] = get_args(EventKind)

# An environment variable's name (never its value: the value may be a secret).
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
EmailAddress = Annotated[str, Field(pattern=r"^[^@\s,;<>]+@[^@\s,;<>]+$")]

SLACK_WEBHOOK_ENV = "BUDGET_PIPELINE_SLACK_WEBHOOK_URL"
SMTP_PASSWORD_ENV = "BUDGET_PIPELINE_SMTP_PASSWORD"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class SlackConfig(_Strict):
    """A Slack incoming webhook; its URL (a secret) is read from ``webhook_url_env``."""

    webhook_url_env: EnvName = SLACK_WEBHOOK_ENV


class EmailConfig(_Strict):
    """E-mail over SMTP; the password (a secret) is read from ``password_env``."""

    host: Annotated[str, Field(min_length=1, pattern=r"^[^\s/]+$")]
    port: Annotated[int, Field(ge=1, le=65535)] | None = None  # 587 / 465 (ssl) / 25 (none)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: Annotated[str, Field(min_length=1)] | None = None
    password_env: EnvName = SMTP_PASSWORD_ENV
    from_address: EmailAddress
    to: Annotated[list[EmailAddress], Field(min_length=1)]

    @property
    def effective_port(self) -> int:
        return self.port or {"starttls": 587, "ssl": 465, "none": 25}[self.security]


class AlertsConfig(_Strict):
    """Which events send a message, where, and how long a sensor tick may spend sending."""

    enabled: bool = True
    events: list[EventKind] = Field(default_factory=lambda: list(EVENT_KINDS))
    slack: SlackConfig | None = None
    email: EmailConfig | None = None
    # Per network operation (connect, each read/write) of one channel.
    timeout_seconds: Annotated[float, Field(gt=0, le=30)] = 5.0
    # All sending of one sensor tick, every channel together; what is not sent by then is
    # retried on the next tick. Dagster gives a sensor tick 60 s.
    max_seconds_per_tick: Annotated[float, Field(gt=0, le=45)] = 20.0
