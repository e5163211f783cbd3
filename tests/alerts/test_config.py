"""The alerts configuration: the pools file's ``alerts:`` section and the environment."""

from __future__ import annotations

import re

import pytest
import yaml

from budget_pipeline.alerts.channels import SlackWebhook, SmtpMail
from budget_pipeline.alerts.settings import DEFAULT_UI_URL, SMTP_ENV, resolve_alerts
from budget_pipeline.config.alerts import EVENT_KINDS, AlertsConfig
from budget_pipeline.config.loading import ConfigError
from budget_pipeline.config.pools import DEFAULT_POOLS_PATH, load_pools

SECRET_URL = "https://hooks.slack.com/services/T000/B000/very-secret-token"
MAIL_ENV = {
    SMTP_ENV["host"]: "smtp.example.com",
    SMTP_ENV["from_address"]: "budget@example.com",
    SMTP_ENV["to"]: "a@example.com, b@example.com",
}


def _pools_file(tmp_path, alerts) -> str:
    config = yaml.safe_load(DEFAULT_POOLS_PATH.read_text())
    config["alerts"] = alerts
    path = tmp_path / "pools.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_the_default_pools_file_has_no_alerts_and_nothing_is_on():
    config = load_pools(DEFAULT_POOLS_PATH)
    assert config.alerts is None
    settings = resolve_alerts(config.alerts, {})
    assert settings.channels == () and settings.ui_url == DEFAULT_UI_URL
    assert not any(settings.wants(kind) for kind in EVENT_KINDS)


def test_a_full_alerts_section_loads_from_the_pools_file(tmp_path):
    path = _pools_file(
        tmp_path,
        {
            "events": ["pause", "check_failed"],
            "slack": {"webhook_url_env": "MY_HOOK"},
            "email": {
                "host": "smtp.example.com", "security": "ssl", "username": "bot@example.com",
                "password_env": "MY_SMTP_PW", "from_address": "bot@example.com",
                "to": ["team@example.com"],
            },
            "timeout_seconds": 3,
        },
    )  # fmt: skip
    alerts = load_pools(path).alerts
    settings = resolve_alerts(alerts, {"MY_HOOK": SECRET_URL, "MY_SMTP_PW": "pw"})
    slack, mail = settings.channels
    assert isinstance(slack, SlackWebhook) and isinstance(mail, SmtpMail)
    assert (mail.host, mail.port, mail.security, mail.recipients) == (
        "smtp.example.com", 465, "ssl", ["team@example.com"],
    )  # fmt: skip
    assert settings.wants("pause") and not settings.wants("run_failed")
    assert "very-secret" not in repr(slack)


@pytest.mark.parametrize(
    ("alerts", "where", "value"),
    [
        ({"events": ["pause", "paused"]}, "alerts.events[1]", "'paused'"),
        ({"email": {"host": "h", "port": 70000, "from_address": "a@b.c", "to": ["d@e.f"]}},
         "alerts.email.port", "70000"),
        ({"email": {"host": "h", "from_address": "a@b.c", "to": ["not-an-address"]}},
         "alerts.email.to[0]", "'not-an-address'"),
        ({"email": {"host": "h", "from_address": "a@b.c", "to": []}}, "alerts.email.to",
         "[...0 item(s)]"),
        ({"slack": {"webhook_url_env": "https://hooks.slack.com/x"}},
         "alerts.slack.webhook_url_env", "'https://hooks.slack.com/x'"),
        ({"slak": {}}, "alerts.slak", "{...}"),
        ({"max_seconds_per_tick": 120}, "alerts.max_seconds_per_tick", "120"),
    ],
)  # fmt: skip
def test_a_bad_alerts_section_names_the_field_and_value(tmp_path, alerts, where, value):
    with pytest.raises(ConfigError) as info:
        load_pools(_pools_file(tmp_path, alerts))
    line = next(x for x in str(info.value).splitlines() if x.strip().startswith(f"- {where}:"))
    assert line.endswith(f"(got {value})")


def test_slack_from_the_environment_alone():
    settings = resolve_alerts(None, {"BUDGET_PIPELINE_SLACK_WEBHOOK_URL": SECRET_URL})
    assert [c.name for c in settings.channels] == ["slack"]
    assert all(settings.wants(kind) for kind in EVENT_KINDS)


def test_a_slack_section_without_its_variable_is_an_error_naming_the_variable():
    with pytest.raises(
        ConfigError, match=re.escape("alerts.slack.webhook_url_env: environment variable MY_HOOK")
    ):
        resolve_alerts(AlertsConfig(slack={"webhook_url_env": "MY_HOOK"}), {})


def test_a_webhook_that_is_not_a_url_is_refused_without_showing_it():
    with pytest.raises(ConfigError) as info:
        resolve_alerts(None, {"BUDGET_PIPELINE_SLACK_WEBHOOK_URL": "very-secret-token"})
    assert "BUDGET_PIPELINE_SLACK_WEBHOOK_URL: not an http(s) webhook URL" in str(info.value)
    assert "very-secret" not in str(info.value)


def test_email_from_the_environment_alone_with_defaults():
    (mail,) = resolve_alerts(None, MAIL_ENV).channels
    assert (mail.host, mail.port, mail.security) == ("smtp.example.com", 587, "starttls")
    assert mail.recipients == ["a@example.com", "b@example.com"]
    assert mail.sender == "budget@example.com"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({SMTP_ENV["port"]: "abc"}, "BUDGET_PIPELINE_SMTP_PORT: Input should be a valid integer"),
        ({SMTP_ENV["security"]: "tls"}, "BUDGET_PIPELINE_SMTP_SECURITY: Input should be"),
        ({SMTP_ENV["from_address"]: ""}, "BUDGET_PIPELINE_ALERT_EMAIL_FROM: Field required"),
        ({SMTP_ENV["to"]: "a@example.com; b@example.com"}, "BUDGET_PIPELINE_ALERT_EMAIL_TO:"),
    ],
)
def test_bad_email_variables_are_named(extra, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        resolve_alerts(None, {**MAIL_ENV, **extra})


def test_a_login_without_its_password_is_an_error_and_never_prints_a_password():
    env = {**MAIL_ENV, SMTP_ENV["username"]: "bot@example.com"}
    with pytest.raises(ConfigError, match="BUDGET_PIPELINE_SMTP_PASSWORD: e-mail login 'bot@"):
        resolve_alerts(None, env)
    (mail,) = resolve_alerts(None, {**env, "BUDGET_PIPELINE_SMTP_PASSWORD": "pw-123"}).channels
    assert "pw-123" not in repr(mail)


def test_enabled_false_turns_every_channel_off():
    settings = resolve_alerts(
        AlertsConfig(enabled=False), {"BUDGET_PIPELINE_SLACK_WEBHOOK_URL": SECRET_URL, **MAIL_ENV}
    )
    assert settings.channels == () and not settings.wants("pause")


def test_the_ui_url_for_links():
    assert resolve_alerts(
        None, {"BUDGET_PIPELINE_UI_URL": "https://dagster.example.com/"}
    ).ui_url == ("https://dagster.example.com")
    with pytest.raises(ConfigError, match="BUDGET_PIPELINE_UI_URL: expected an http"):
        resolve_alerts(None, {"BUDGET_PIPELINE_UI_URL": "dagster.example.com"})
