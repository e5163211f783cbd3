"""Alerts: a pause in a new plan, a failed blocking check, a failed run, a partly applied
execution and a score-drift flag, sent to a Slack incoming webhook and/or e-mail.

- :mod:`.events`: the asset keys and metadata names the sensors read (the contract).
- :mod:`.messages`: the message text, built from event-log metadata (no Dagster import).
- :mod:`.channels`: Slack webhook (httpx) and SMTP (smtplib) delivery.
- :mod:`.dispatch`: every channel at once, bounded in time, never raising.
- :mod:`.settings`: which channels are on (pools file ``alerts:`` section + environment).

The Dagster sensors that drive them live in ``budget_pipeline/defs/alerts/``.
"""
