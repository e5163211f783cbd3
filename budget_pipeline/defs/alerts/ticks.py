"""One tick of an alert sensor: read new events, send each new alert once, keep a JSON cursor.

The cursor is ``{"after": storage id, "seen": [keys], "retry": [...]}``:

- ``after``: the last event looked at. A first tick (no cursor) looks back
  :data:`FIRST_TICK_LOOKBACK_HOURS` only, so turning the sensor on does not replay history.
- ``seen``: keys of recent alerts (e.g. ``pause:<plan id>``): the same plan re-materialized by
  the next intraday run is not news and is not sent again.
- ``retry``: messages a channel did not take (down, HTTP 500, timed out), tried again on the
  next ticks up to :data:`MAX_ATTEMPTS` times in all, then dropped with an error in the log.

With alerts off (nothing configured, ``enabled: false``, or the kind not in ``events``) the
cursor still moves to the newest event, so switching alerts on later sends no backlog. Sending
never raises and takes at most ``max_seconds_per_tick``; a bad alert configuration does raise
(a failed tick in the UI, naming the field) because nothing could be sent anyway.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field

import dagster as dg

from budget_pipeline.alerts.dispatch import deliver
from budget_pipeline.alerts.messages import Alert
from budget_pipeline.alerts.settings import resolve_alerts
from budget_pipeline.config.loading import ConfigError
from budget_pipeline.defs.alerts.collectors import SOURCES, Scope
from budget_pipeline.defs.decisions.checks import GUARDS
from budget_pipeline.defs.resources import PoolsResource
from budget_pipeline.defs.scope import repository_scope

FIRST_TICK_LOOKBACK_HOURS = 24
MAX_SEEN = 200
MAX_RETRY = 20
MAX_ATTEMPTS = 3


@dataclass
class TickState:
    after: int | None = None
    seen: list[str] = field(default_factory=list)
    retry: list[dict] = field(default_factory=list)  # {"channel", "alert", "attempts"}

    @classmethod
    def parse(cls, cursor: str | None) -> TickState:
        if not cursor:
            return cls()
        data = json.loads(cursor)
        return cls(data.get("after"), list(data.get("seen", [])), list(data.get("retry", [])))

    def dump(self) -> str:
        return json.dumps({"after": self.after, "seen": self.seen, "retry": self.retry})


def _load_pools(pools: PoolsResource, log) -> tuple[object | None, str | None]:
    """The ``alerts:`` section and currency; a broken pools file must not silence the alert
    that tells of the runs it breaks, so it falls back to the environment alone."""
    try:
        config = pools.load()
    except ConfigError as exc:
        log.warning(f"pools file unusable, alerts configured from the environment only: {exc}")
        return None, None
    return config.alerts, config.currency


def alert_tick(
    context: dg.SensorEvaluationContext, kind: str, pools: PoolsResource
) -> dg.SensorResult:
    source = SOURCES[kind]
    state = TickState.parse(context.cursor)
    alerts_config, currency = _load_pools(pools, context.log)
    settings = resolve_alerts(alerts_config, os.environ)
    instance = context.instance
    account = repository_scope(context)  # the code location's ad account
    if not settings.wants(kind):
        newest = source.latest(instance, account)
        state.after = max(state.after or 0, newest) if newest is not None else state.after
        state.retry = []
        why = "no alert channel configured" if not settings.channels else f"{kind} not in events"
        return dg.SensorResult(skip_reason=f"alerts off: {why}", cursor=state.dump())

    since = None if state.after is not None else time.time() - FIRST_TICK_LOOKBACK_HOURS * 3600
    scope = Scope(
        ui_url=settings.ui_url,
        currency=currency,
        events=settings.events,
        check_descriptions={g.name: g.description for g in GUARDS},
        account=account,
    )
    batch = source.collect(instance, state.after, since, scope)
    new: list[Alert] = []
    for alert in batch.alerts:
        if alert.key not in state.seen and alert.key not in {a.key for a in new}:
            new.append(alert)

    attempts: dict[tuple[str, str], int] = {}
    work = []
    for channel in settings.channels:
        retries = [r for r in state.retry if r["channel"] == channel.name]
        for r in retries:
            attempts[(channel.name, r["alert"]["key"])] = r["attempts"]
        work.append((channel, [Alert.from_json(r["alert"]) for r in retries] + new))
    deliveries = deliver(work, max_seconds=settings.max_seconds_per_tick)

    retry, sent, failed = [], 0, 0
    for d in deliveries:
        if d.ok:
            sent += 1
            context.log.info(
                f"{kind} alert sent to {d.channel} in {d.seconds:.2f} s: {d.alert.title}"
            )
            continue
        failed += 1
        tries = attempts.get((d.channel, d.alert.key), 0) + 1
        if tries < MAX_ATTEMPTS:
            context.log.warning(
                f"{kind} alert to {d.channel} failed (try {tries}), retried next tick: {d.error}"
            )
            retry.append({"channel": d.channel, "alert": d.alert.to_json(), "attempts": tries})
        else:
            context.log.error(
                f"{kind} alert to {d.channel} dropped after {tries} tries: {d.error}; {d.alert.title}"
            )
    if len(retry) > MAX_RETRY:
        for r in retry[:-MAX_RETRY]:
            context.log.error(
                f"{kind} alert to {r['channel']} dropped (retry queue full): {r['alert']['title']}"
            )
        retry = retry[-MAX_RETRY:]
    state.after = batch.after
    state.seen = (state.seen + [a.key for a in new])[-MAX_SEEN:]
    state.retry = retry
    summary = f"{len(new)} new {kind} alert(s); {sent} message(s) sent, {failed} failed"
    return dg.SensorResult(skip_reason=summary, cursor=state.dump())
