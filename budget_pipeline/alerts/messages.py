"""Alert messages a marketer reads: built from event-log metadata, rendered for Slack and mail.

The builders take plain Python values (the ``.value`` of each metadata entry), so they are
tested without Dagster. Money is shown in major units with its currency, entities by name
next to their id where the metadata has a name, and every message ends with the plan id, the
run id and a link to the run in the Dagster UI.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

from budget_pipeline.alerts import events
from budget_pipeline.alerts.markdown import Table, parse_tables, table_with
from budget_pipeline.money import MoneyError, format_money

MAX_ROWS = 10  # rows quoted per message; the rest is counted
MAX_REASON = 240


@dataclass(frozen=True)
class Alert:
    kind: str  # one of config.alerts.EVENT_KINDS
    key: str  # the same key twice is the same news: sent once
    title: str
    lines: tuple[str, ...] = field(default_factory=tuple)
    plan_id: str | None = None
    run_id: str | None = None
    link: str | None = None

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping) -> Alert:
        return cls(**{**data, "lines": tuple(data.get("lines", ()))})

    def footer(self) -> list[str]:
        out = [f"Plan: {self.plan_id}"] if self.plan_id else []
        if self.run_id:
            out.append(f"Run: {self.run_id}" + (f" — {self.link}" if self.link else ""))
        return out

    def plain_text(self) -> str:
        return "\n".join([self.title, "", *self.lines, "", *self.footer()]).strip() + "\n"


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(alert: Alert) -> dict:
    """An incoming-webhook body: ``text`` (what notifications show) plus blocks."""
    body = "\n".join(_slack_escape(line) for line in alert.lines)
    footer = []
    if alert.plan_id:
        footer.append(f"Plan `{_slack_escape(alert.plan_id)}`")
    if alert.run_id:
        label = f"run {alert.run_id[:8]}"
        footer.append(f"<{alert.link}|{label}>" if alert.link else label)
    text = f"*{_slack_escape(alert.title)}*\n{body}" + ("\n" + " · ".join(footer) if footer else "")
    blocks: list[dict] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{_slack_escape(alert.title)}*"}}
    ]
    if body:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": body[:2900]}})
    if footer:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(footer)}]}
        )
    return {"text": text, "blocks": blocks}


def run_link(ui_url: str, run_id: str) -> str:
    return f"{ui_url.rstrip('/')}/runs/{run_id}"


def _short(text: str, limit: int = MAX_REASON) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _label(row: Mapping[str, str], table: Table) -> str:
    """``Name (id)`` when the table has a name column, else the id."""
    id_col = table.column("entity_id", "entity", "id", "ad set id") or table.header[0]
    name_col = table.column(
        "name", "entity_name", "ad set name", "adset_name", "entity name", containing="name"
    )
    entity, name = row.get(id_col, ""), row.get(name_col, "") if name_col else ""
    return f"{name} ({entity})" if name and name != entity else entity


def _more(rows: Sequence, shown: int) -> list[str]:
    return [f"… and {len(rows) - shown} more"] if len(rows) > shown else []


def _money(cell: str, currency: str | None) -> str:
    """A budget cell in major units: integer minor units are converted, text kept."""
    if currency and cell.lstrip("-").isdigit():
        try:
            return format_money(int(cell), currency)
        except MoneyError:
            return cell
    return cell


# --- builders, one per event kind ---------------------------------------------------------


def pause_alert(meta: Mapping[str, object], *, run_id: str, ui_url: str) -> Alert | None:
    """A new plan that pauses something (``pauses`` > 0); None otherwise."""
    pauses = int(meta.get(events.PAUSES) or 0)
    if pauses <= 0:
        return None
    plan_id = str(meta.get(events.PLAN_ID) or "unknown plan")
    table = table_with(str(meta.get(events.MOVES_TABLE) or ""), "action")
    rows = [r for r in table.rows if r["action"].lower() == "pause"] if table else []
    lines = []
    budget_col = table.column("old", "before", "budget", containing="old") if table else None
    for row in rows[:MAX_ROWS]:
        pool = f" in pool {row['pool']}" if row.get("pool") else ""
        budget = f", daily budget {row[budget_col]} kept" if budget_col and row[budget_col] else ""
        reason = f": {_short(row['reason'])}" if row.get("reason") else ""
        lines.append(f"• {_label(row, table)}{pool}{budget}{reason}")
    lines += _more(rows, MAX_ROWS)
    if not rows:
        lines.append(f"The plan pauses {pauses}; see moves_table on rebalance_plan for which.")
    if meta.get(events.AS_OF):
        lines.append(f"Data as of {meta[events.AS_OF]}.")
    return Alert(
        kind="pause",
        key=f"pause:{plan_id}",
        title=f"Plan {plan_id} pauses {pauses} ad set(s) or campaign(s)",
        lines=tuple(lines),
        plan_id=plan_id,
        run_id=run_id,
        link=run_link(ui_url, run_id),
    )


@dataclass(frozen=True)
class FailedCheck:
    name: str
    violations: int | None = None
    description: str | None = None
    details: str | None = None  # the check's markdown table of violations


def _entities(details: str | None, limit: int = 5) -> str:
    """``Name (id), id2 … (+3)`` from a violations table with an entity column, else ""."""
    table = table_with(details or "", "entity_id") or table_with(details or "", "entity")
    if table is None or not table.rows:
        return ""
    labels = list(dict.fromkeys(_label(row, table) for row in table.rows))
    more = f" (+{len(labels) - limit})" if len(labels) > limit else ""
    return ", ".join(labels[:limit]) + more


def check_alert(plan_id: str, failed: Sequence[FailedCheck], *, run_id: str, ui_url: str) -> Alert:
    """Blocking checks that failed on one plan (they stop its execution)."""
    lines = []
    for check in sorted(failed, key=lambda c: c.name):
        count = f" — {check.violations} violation(s)" if check.violations is not None else ""
        what = f": {check.description}" if check.description else ""
        who = _entities(check.details)
        lines.append(f"• {check.name}{count}{what}" + (f" Affects {who}." if who else ""))
    lines.append("This plan will not be executed. The run's check results list each violation.")
    names = ",".join(sorted(c.name for c in failed))
    return Alert(
        kind="check_failed",
        key=f"check:{plan_id}:{names}",
        title=f"Plan {plan_id} blocked: {len(failed)} blocking check(s) failed",
        lines=tuple(lines),
        plan_id=plan_id,
        run_id=run_id,
        link=run_link(ui_url, run_id),
    )


def execution_alert(
    meta: Mapping[str, object],
    log_entries: str | None,
    *,
    currency: str | None,
    run_id: str,
    ui_url: str,
) -> Alert | None:
    """A partly applied execution (failed, skipped or deferred > 0); None otherwise."""
    counts = {k: int(meta.get(k) or 0) for k in events.EXECUTION_PROBLEM_COUNTS}
    if not any(counts.values()):
        return None
    plan_id = str(meta.get(events.PLAN_ID) or "unknown plan")
    problems = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
    done = ", ".join(
        f"{int(meta[k])} {k}" for k in events.EXECUTION_OTHER_COUNTS if meta.get(k) is not None
    )
    lines = [f"Steps: {done + ', ' if done else ''}{problems}."]
    table = table_with(log_entries or "", "status")
    rows = [r for r in table.rows if r["status"] in counts] if table else []
    for row in rows[:MAX_ROWS]:
        pool = f" (pool {row['pool']})" if row.get("pool") else ""
        step = row.get("step", "")
        change = ""
        if row.get("before_budget") and row.get("after_budget"):
            before = _money(row["before_budget"], currency)
            after = _money(row["after_budget"], currency)
            change = f" {step} {before} → {after}" if step != "pause" else " pause"
        message = f" — {_short(row['message'])}" if row.get("message") else ""
        lines.append(f"• {_label(row, table)}{pool}{change}: {row['status']}{message}")
    lines += _more(rows, MAX_ROWS)
    lines.append(
        "Failed and deferred steps are tried again when this plan's execution is run again; "
        "skipped ones found a budget someone else had changed and are left as they are."
    )
    return Alert(
        kind="execution_partial",
        key=f"execution:{plan_id}:{run_id}",
        title=f"Plan {plan_id} partly applied: {problems}",
        lines=tuple(lines),
        plan_id=plan_id,
        run_id=run_id,
        link=run_link(ui_url, run_id),
    )


def flagged_pools(value: object) -> list[str]:
    """The ``flagged_pools`` metadata: a JSON list, or a text holding one."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else []
        except json.JSONDecodeError:
            return [value]
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [] if value is None else [str(value)]


def drift_alert(
    meta: Mapping[str, object], *, partition: str | None, run_id: str, ui_url: str
) -> Alert | None:
    """Pools flagged for recalibration by ``score_drift``; None when none is flagged."""
    pools = sorted(flagged_pools(meta.get(events.FLAGGED_POOLS)))
    if not pools:
        return None
    lines = [f"Pools to recalibrate: {', '.join(pools)}."]
    table = parse_tables(str(meta.get(events.DRIFT_TABLE) or ""))
    for row in (table[0].rows if table else ())[:MAX_ROWS]:
        lines.append("• " + ", ".join(f"{k} {v}" for k, v in row.items() if v))
    lines.append("Their scores moved away from 30 days ago: review weights and thresholds.")
    when = partition or (str(meta[events.AS_OF]) if meta.get(events.AS_OF) else run_id)
    return Alert(
        kind="score_drift",
        key=f"drift:{when}:{','.join(pools)}",
        title=f"Score drift: {len(pools)} pool(s) flagged for recalibration"
        + (f" ({partition})" if partition else ""),
        lines=tuple(lines),
        run_id=run_id,
        link=run_link(ui_url, run_id),
    )


def run_failure_alert(
    job_name: str,
    *,
    run_id: str,
    ui_url: str,
    step: str | None,
    error: str | None,
    tags: Mapping[str, str],
    plan_tag: str,
) -> Alert:
    """A failed run: which step, its error's first lines, the partitions and plan if tagged."""
    lines = []
    if step:
        lines.append(f"Step {step} failed" + (f": {_short(error, 400)}" if error else "."))
    elif error:
        lines.append(_short(error, 400))
    start = tags.get("dagster/asset_partition_range_start") or tags.get("dagster/partition")
    end = tags.get("dagster/asset_partition_range_end")
    if start:
        lines.append(f"Partitions {start}" + (f" … {end}" if end and end != start else "") + ".")
    # An implicit asset job (a UI "Materialize", `budget-pipeline run`) has no name to show.
    name = job_name if not job_name.startswith("__") else (f"step {step}" if step else "")
    return Alert(
        kind="run_failed",
        key=f"run:{run_id}",
        title="Run failed" + (f": {name}" if name else ""),
        lines=tuple(lines),
        plan_id=tags.get(plan_tag),
        run_id=run_id,
        link=run_link(ui_url, run_id),
    )
