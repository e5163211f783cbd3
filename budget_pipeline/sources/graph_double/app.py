"""The Graph API double's request handling: a simulated account behind Meta's HTTP surface.

:class:`GraphDouble` answers the paths the pipeline uses, in the shapes the Marketing API
uses, from a :class:`~budget_pipeline.sources.simulated.SimulatedAccount`:

- ``GET /{v}/act_{id}`` (currency, timezone_name), ``/act_{id}/campaigns``, ``/act_{id}/adsets``
  (budgets as minor-unit strings, ``effective_status``, ``learning_stage_info``) and
  ``/act_{id}/minimum_budgets``;
- ``GET /{v}/act_{id}/insights`` at ad-set, campaign or account level, daily
  (``time_increment=1``), whole-range or hourly
  (``breakdowns=hourly_stats_aggregated_by_advertiser_time_zone``): every number a string,
  zero metrics absent, purchases under several aliases at once, no ``reach`` on hourly rows;
- ``POST /{v}/act_{id}/insights`` → ``report_run_id``; ``GET /{v}/{run}`` (async_status,
  async_percent_completion as numbers); ``GET /{v}/{run}/insights``;
- ``GET``/``POST /{v}/{campaign or ad set id}``: budget (minor-unit strings, form or JSON) and
  status writes go to the account, at most 4 budget edits per entity per hour (613/1487632).

Cursor paging (``after`` cursors, ``next`` absent on the last page, the token embedded in
``next`` as Meta does), the error envelope, usage headers, and a fault queue for throttling
codes, 5xx, HTML pages, slow answers, dropped connections and corrupted rows.
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit
from zoneinfo import ZoneInfo

import polars as pl

from budget_pipeline.money import minor_factor, to_minor
from budget_pipeline.sources.simulated.account import LEARNING_HOURS, LEARNING_THRESHOLD

HOURLY_BREAKDOWN = "hourly_stats_aggregated_by_advertiser_time_zone"
PURCHASE_ALIASES = (
    "offsite_conversion.fb_pixel_purchase",
    "omni_purchase",
    "onsite_web_purchase",
    "purchase",
)
INSIGHT_FIELDS = frozenset(
    {
        "account_id", "account_name", "account_currency", "campaign_id", "campaign_name",
        "adset_id", "adset_name", "spend", "impressions", "reach", "frequency", "clicks", "ctr",
        "cpc", "cpm", "actions", "action_values", "purchase_roas", "cost_per_action_type",
        "date_start", "date_stop",
    }
)  # fmt: skip
ENTITY_FIELDS = {
    "campaign": frozenset(
        {
            "id", "account_id", "name", "status", "effective_status", "daily_budget",
            "lifetime_budget", "budget_remaining", "stop_time", "buying_type",
        }
    ),
    "adset": frozenset(
        {
            "id", "account_id", "name", "campaign_id", "status", "effective_status",
            "daily_budget", "lifetime_budget", "budget_remaining", "end_time",
            "learning_stage_info",
        }
    ),
}  # fmt: skip
ASYNC_STATUSES = ("Job Not Started", "Job Started", "Job Running")
BUDGET_EDITS_PER_HOUR = 4
DATE_PRESETS = {"today": 0, "yesterday": 1, "last_3d": 3, "last_7d": 7, "last_14d": 14}

HTML_ERROR_PAGE = """<html lang="en" id="facebook"><head><title>Facebook | Error</title></head>
<body><div id="core"><h1 id="sorry">Sorry, something went wrong.</h1>
<p id="promise">We're working on it and we'll get it fixed as soon as we can.</p></div></body>
</html>"""


class ApiError(Exception):
    """An error the double answers with Meta's envelope."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        subcode: int | None = None,
        error_type: str = "OAuthException",
        is_transient: bool | None = None,
        user_msg: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = error_body(code, message, subcode=subcode, error_type=error_type)
        if is_transient is not None:
            self.body["error"]["is_transient"] = is_transient
        if user_msg:
            self.body["error"]["error_user_msg"] = user_msg


def error_body(
    code: int, message: str, *, subcode: int | None = None, error_type: str = "OAuthException"
) -> dict:
    error: dict[str, Any] = {"message": message, "type": error_type, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    error["fbtrace_id"] = "A" + secrets.token_urlsafe(9)
    return {"error": error}


def _invalid(message: str, subcode: int | None = None) -> ApiError:
    return ApiError(400, 100, f"(#100) {message}", subcode=subcode)


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json; charset=UTF-8"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False


class FaultQueue:
    """Faults served before normal handling, first match first, each ``times`` times (1).

    An entry is a dict with any of:

    - ``match``: substring of ``"METHOD /path?query"`` the request must contain;
    - ``status`` with ``code``/``subcode``/``message``/``type``/``is_transient``: an error
      envelope (a ``status`` of 5xx without ``code`` gives code 2, or HTML with ``html``);
    - ``body`` (dict → JSON, str → text/html) with ``status`` (default 200): a canned reply;
    - ``delay``: seconds to wait before answering (alone: then answer normally);
    - ``drop``: close the connection without an answer;
    - ``lose_reply``: handle the request normally (a write takes effect), then close the
      connection without an answer, as when a reply is lost on the way back;
    - ``corrupt``: ``{"row": i, "field": name, "value": v}`` set (or with ``value`` None,
      remove) one field of row ``i`` of the normal answer's ``data``;
    - ``headers``: extra response headers;
    - ``async_status``: the next report-run poll reports this status (e.g. "Job Failed").
    """

    def __init__(self) -> None:
        self._items: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def push(self, *faults: Mapping[str, Any]) -> None:
        with self._lock:
            for fault in faults:
                item = dict(fault)
                item.setdefault("times", 1)
                self._items.append(item)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def pop(self, request_line: str, *, kind: str = "request") -> dict[str, Any] | None:
        with self._lock:
            for item in self._items:
                if ("async_status" in item) != (kind == "report_status"):
                    continue
                if item.get("match") and item["match"] not in request_line:
                    continue
                item["times"] -= 1
                if item["times"] <= 0:
                    self._items.remove(item)
                return item
        return None


def _redact_params(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: ("REDACTED" if k == "access_token" else v) for k, v in params.items()}


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def _offset(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        return int(text.removeprefix("o:"))
    except (ValueError, UnicodeDecodeError):
        raise _invalid(f"Invalid cursor {cursor!r}") from None


def _number(value: float | Decimal, places: int = 6) -> str:
    """A Meta-style decimal string: up to ``places`` decimals, no trailing zeros."""
    text = f"{float(value):.{places}f}".rstrip("0").rstrip(".")
    return text or "0"


class GraphDouble:
    """Meta's Graph API surface over one simulated account.

    ``quota_per_hour`` sets the usage headers (calls in the last wall-clock hour as a share of
    it) unless :meth:`set_usage` pins them; ``async_polls`` is how many polls a report run
    stays unfinished; ``sync_max_days`` is the longest synchronous hourly Insights range (a
    longer one answers code 1 "reduce the amount of data", as Meta does for heavy requests).
    """

    def __init__(
        self,
        account: Any,
        *,
        token: str,
        quota_per_hour: int = 5000,
        async_polls: int = 1,
        sync_max_days: int = 31,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not token:
            raise ValueError("the double needs a non-empty token")
        self.account = account
        self._token = token
        self.quota_per_hour = quota_per_hour
        self.async_polls = async_polls
        self.sync_max_days = sync_max_days
        self._clock = clock
        self.faults = FaultQueue()
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.RLock()
        self._calls: deque[float] = deque()
        self._usage: tuple[float, float] | None = None
        self._edits: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
        self._runs: dict[str, dict[str, Any]] = {}
        self._row_cache: dict[str, list[dict[str, Any]]] = {}
        self._run_ids = itertools.count(6_120_000_000_001)
        self._factor = minor_factor(account.currency)
        self._places = 0 if self._factor == 1 else 2

    def __repr__(self) -> str:
        return f"GraphDouble(account_id={self.account.account_id!r})"

    # -- configuration -----------------------------------------------------------------------

    def set_usage(self, pct: float | None, *, regain_minutes: float = 0.0) -> None:
        """Pin every usage header at ``pct`` percent (None: back to counting calls)."""
        with self._lock:
            self._usage = None if pct is None else (float(pct), float(regain_minutes))

    @property
    def digits(self) -> str:
        return self.account.account_id.removeprefix("act_")

    # -- entry point -------------------------------------------------------------------------

    def handle(
        self, method: str, target: str, body: bytes, headers: Mapping[str, str], *, base_url: str
    ) -> Reply:
        """Answer one HTTP request (``target`` is the path with its query string)."""
        parts = urlsplit(target)
        params: dict[str, Any] = dict(parse_qsl(parts.query, keep_blank_values=True))
        content_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
        if body:
            if "json" in content_type:
                try:
                    loaded = json.loads(body)
                except ValueError:
                    loaded = None
                if isinstance(loaded, dict):
                    params.update(loaded)
            else:
                params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        record = {"method": method, "path": parts.path, "params": _redact_params(params)}
        with self._lock:
            self.requests.append(record)
            self._calls.append(self._clock())
        reply = self._answer(method, parts.path, params, headers, base_url=base_url)
        record["status"] = reply.status if not reply.drop else None
        return reply

    def _answer(
        self,
        method: str,
        path: str,
        params: dict[str, Any],
        headers: Mapping[str, str],
        *,
        base_url: str,
    ) -> Reply:
        query = urlencode(_redact_params(params))
        fault = self.faults.pop(f"{method} {path}?{query}")
        delay = float(fault.get("delay", 0.0)) if fault else 0.0
        extra = dict(fault.get("headers", {})) if fault else {}
        usage_kind = "ads_insights" if "insights" in path else "ads_management"
        if fault and fault.get("drop"):
            return Reply(0, b"", delay=delay, drop=True)
        try:
            self._check_token(params, headers)
            if fault and "body" in fault:
                reply = self._canned(fault)
            elif fault and "status" in fault:
                reply = self._fault_error(fault)
            else:
                with self._lock:
                    body = self._route(method, path, params, base_url=base_url)
                if fault and fault.get("lose_reply"):
                    return Reply(0, b"", delay=delay, drop=True)
                if fault and "corrupt" in fault:
                    body = self._corrupt(body, fault["corrupt"])
                reply = Reply(200, json.dumps(body).encode())
        except ApiError as exc:
            reply = Reply(exc.status, json.dumps(exc.body).encode())
        reply.delay = delay
        usage = self._usage_headers(usage_kind, path)
        overridden = {name.lower() for name in extra}
        reply.headers = {k: v for k, v in usage.items() if k not in overridden} | extra
        return reply

    def _check_token(self, params: Mapping[str, Any], headers: Mapping[str, str]) -> None:
        lower = {k.lower(): v for k, v in headers.items()}
        auth = lower.get("authorization", "")
        given = params.get("access_token")
        if auth.split(" ", 1)[0] in ("Bearer", "OAuth") and " " in auth:
            given = auth.split(" ", 1)[1].strip()
        if not given:
            raise ApiError(400, 104, "An access token is required to request this resource.")
        if not secrets.compare_digest(str(given), self._token):
            raise ApiError(400, 190, "Invalid OAuth access token - Cannot parse access token")

    def _canned(self, fault: Mapping[str, Any]) -> Reply:
        body = fault["body"]
        status = int(fault.get("status", 200))
        if isinstance(body, str):
            return Reply(status, body.encode(), content_type="text/html; charset=utf-8")
        return Reply(status, json.dumps(body).encode())

    def _fault_error(self, fault: Mapping[str, Any]) -> Reply:
        status = int(fault["status"])
        if fault.get("html"):
            return Reply(status, HTML_ERROR_PAGE.encode(), content_type="text/html; charset=utf-8")
        code = fault.get("code")
        if code is None:
            code = 2 if status >= 500 else 1
        message = fault.get("message") or {
            4: "(#4) Application request limit reached",
            17: "(#17) User request limit reached",
            32: "(#32) Page request limit reached",
            613: "(#613) Calls to this api have exceeded the rate limit.",
            2: "An unexpected error has occurred. Please retry your request later.",
            1: "An unknown error occurred",
            190: "Invalid OAuth access token - Cannot parse access token",
            100: "(#100) Invalid parameter",
        }.get(
            int(code),
            f"(#{code}) There have been too many calls to this ad-account. Wait a bit and try "
            "again."
            if 80000 <= int(code) <= 80014
            else f"(#{code}) Error",
        )
        body = error_body(
            int(code),
            message,
            subcode=fault.get("subcode"),
            error_type=fault.get("type", "OAuthException"),
        )
        if "is_transient" in fault:
            body["error"]["is_transient"] = fault["is_transient"]
        return Reply(status, json.dumps(body).encode())

    @staticmethod
    def _corrupt(body: Any, spec: Mapping[str, Any]) -> Any:
        rows = body.get("data") if isinstance(body, dict) else None
        if isinstance(rows, list) and rows:
            row = rows[min(int(spec.get("row", 0)), len(rows) - 1)]
            if spec.get("value") is None:
                row.pop(spec["field"], None)
            else:
                row[spec["field"]] = spec["value"]
        return body

    def _usage_headers(self, kind: str, path: str) -> dict[str, str]:
        now = self._clock()
        with self._lock:
            while self._calls and now - self._calls[0] > 3600:
                self._calls.popleft()
            pinned = self._usage
            calls = len(self._calls)
        if pinned is None:
            pct, regain = min(100.0, 100.0 * calls / max(1, self.quota_per_hour)), 0.0
        else:
            pct, regain = pinned
        whole = round(pct)
        headers = {
            "x-app-usage": json.dumps(
                {"call_count": whole, "total_cputime": whole, "total_time": whole}
            ),
            "x-business-use-case-usage": json.dumps(
                {
                    self.digits: [
                        {
                            "type": kind,
                            "call_count": whole,
                            "total_cputime": whole,
                            "total_time": whole,
                            "estimated_time_to_regain_access": round(regain),
                            "ads_api_access_tier": "standard_access",
                        }
                    ]
                }
            ),
        }
        if "act_" in path:
            headers["x-ad-account-usage"] = json.dumps(
                {
                    "acc_id_util_pct": round(pct, 2),
                    "reset_time_duration": round(regain * 60),
                    "ads_api_access_tier": "standard_access",
                }
            )
        if "insights" in path:
            headers["x-fb-ads-insights-throttle"] = json.dumps(
                {"app_id_util_pct": round(pct, 2), "acc_id_util_pct": round(pct, 2)}
            )
        return headers

    # -- routing -----------------------------------------------------------------------------

    def _route(self, method: str, path: str, params: dict[str, Any], *, base_url: str) -> Any:
        segments = [s for s in path.split("/") if s]
        if not segments or not segments[0].startswith("v") or "." not in segments[0]:
            raise _invalid(f"Unknown path components: {path}")
        version, rest = segments[0], segments[1:]
        next_base = f"{base_url}/{version}/{'/'.join(rest)}"
        if not rest:
            raise _invalid("Unsupported request: no object id")
        head, edge = rest[0], rest[1] if len(rest) > 1 else None
        if len(rest) > 2:
            raise _invalid(f"Unknown path components: /{'/'.join(rest[2:])}")
        if head.startswith("act_"):
            if head != self.account.account_id:
                raise _unsupported(method, head)
            return self._account_route(method, edge, params, next_base)
        if head in self._runs:
            if method != "GET":
                raise _unsupported(method, head)
            if edge is None:
                return self._poll_run(head)
            if edge == "insights":
                return self._run_insights(head, params, next_base)
            raise _invalid(f"Unknown path components: /{edge}")
        entities = self.account.entities()
        if head in set(entities["entity_id"].to_list()) and edge is None:
            if method == "GET":
                row = entities.filter(pl.col("entity_id") == head).row(0, named=True)
                return self._entity_json(row, _fields(params, row["entity_type"]), entities)
            if method == "POST":
                return self._write(head, params, entities)
        raise _unsupported(method, head)

    def _account_route(
        self, method: str, edge: str | None, params: dict[str, Any], next_base: str
    ) -> Any:
        acct = self.account
        if edge is None and method == "GET":
            return {
                "id": acct.account_id,
                "account_id": self.digits,
                "name": f"Simulated account {self.digits}",
                "currency": acct.currency,
                "timezone_name": acct.timezone,
                "account_status": 1,
            }
        if edge == "insights" and method == "GET":
            spec = self._insights_spec(params, asynchronous=False)
            return self._paged(self._cached_rows(spec), params, next_base)
        if edge == "insights" and method == "POST":
            spec = self._insights_spec(params, asynchronous=True)
            run_id = str(next(self._run_ids))
            self._runs[run_id] = {"spec": spec, "polls": 0, "status": None}
            return {"report_run_id": run_id}
        if edge in ("campaigns", "adsets") and method == "GET":
            kind = edge[:-1]
            entities = acct.entities()
            fields = _fields(params, kind)
            rows = [
                self._entity_json(row, fields, entities)
                for row in entities.filter(pl.col("entity_type") == kind).iter_rows(named=True)
            ]
            return self._paged(rows, params, next_base)
        if edge == "minimum_budgets" and method == "GET":
            return {"data": [self.minimum_budgets()]}
        raise _unsupported(method, f"{acct.account_id}/{edge}")

    # -- objects -----------------------------------------------------------------------------

    def minimum_budgets(self) -> dict[str, Any]:
        """The account's minimum daily budgets: 100 minor units (1.00 EUR, or 100 JPY where
        the currency has no decimals), 500 for low-frequency optimisation."""
        return {
            "currency": self.account.currency,
            "min_daily_budget_imp": 100,
            "min_daily_budget_video_views": 100,
            "min_daily_budget_high_freq": 100,
            "min_daily_budget_low_freq": 500,
        }

    def _effective_status(self, row: Mapping[str, Any], entities: pl.DataFrame) -> str:
        if row["status"] != "ACTIVE":
            return "PAUSED"
        if row["entity_type"] == "adset":
            camp = entities.filter(
                (pl.col("entity_id") == row["campaign_id"]) & (pl.col("entity_type") == "campaign")
            )
            if camp.height and camp["status"][0] != "ACTIVE":
                return "CAMPAIGN_PAUSED"
        return "ACTIVE"

    def _end_time(self, end: date | None) -> str | None:
        if end is None:
            return None
        moment = datetime.combine(end + timedelta(days=1), datetime.min.time())
        return moment.replace(tzinfo=ZoneInfo(self.account.timezone)).strftime(
            "%Y-%m-%dT%H:%M:%S%z"
        )

    def _entity_json(
        self, row: Mapping[str, Any], fields: Iterable[str], entities: pl.DataFrame
    ) -> dict[str, Any]:
        values: dict[str, Any] = {
            "id": row["entity_id"],
            "account_id": self.digits,
            "name": row["name"],
            "campaign_id": row["campaign_id"],
            "status": row["status"],
            "effective_status": self._effective_status(row, entities),
            "daily_budget": None if row["daily_budget"] is None else str(row["daily_budget"]),
            "lifetime_budget": None
            if row["lifetime_budget"] is None
            else str(row["lifetime_budget"]),
            "budget_remaining": None
            if row["budget_remaining"] is None
            else str(row["budget_remaining"]),
            "buying_type": "AUCTION",
        }
        end = self._end_time(row["end_date"])
        values["end_time" if row["entity_type"] == "adset" else "stop_time"] = end
        if row["entity_type"] == "adset":
            values["learning_stage_info"] = self._learning_info(row["entity_id"], row)
        out = {"id": row["entity_id"]}
        for name in fields:
            if values.get(name) is not None:
                out[name] = values[name]
        return out

    def _learning_info(self, adset_id: str, row: Mapping[str, Any]) -> dict[str, Any]:
        """LEARNING for 120 simulated hours after a budget change above 20 % of the ad set's
        (or its CBO campaign's) budget, as the simulated account models it; else SUCCESS."""
        acct = self.account
        budgets: dict[str, int] = {}
        for camp in acct.scenario.campaigns:
            if camp.daily_budget is not None:
                budgets[camp.id] = to_minor(camp.daily_budget, acct.currency)
            for adset in camp.adsets:
                amount = adset.daily_budget or adset.lifetime_budget
                if amount is not None:
                    budgets[adset.id] = to_minor(amount, acct.currency)
        last_significant: datetime | None = None
        for change in acct.state()["changes"]:
            if change["field"] == "status":
                continue
            old, new = budgets.get(change["entity_id"], 0), int(change["value"])
            budgets[change["entity_id"]] = new
            relative = abs(new - old) / old if old else (1.0 if new else 0.0)
            if relative > LEARNING_THRESHOLD and change["entity_id"] in (
                adset_id,
                row["campaign_id"],
            ):
                last_significant = datetime.fromisoformat(change["at"])
        if last_significant and acct.now - last_significant < timedelta(hours=LEARNING_HOURS):
            return {
                "status": "LEARNING",
                "last_sig_edit_ts": int(last_significant.timestamp()),
                "attribution_windows": ["1d_view", "7d_click"],
                "conversions": 0,
            }
        return {"status": "SUCCESS", "attribution_windows": ["1d_view", "7d_click"]}

    def _write(self, entity_id: str, params: Mapping[str, Any], entities: pl.DataFrame) -> Any:
        acct = self.account
        known = {"daily_budget", "lifetime_budget", "status", "access_token"}
        unknown = sorted(set(params) - known)
        if unknown:
            raise _invalid(f"Param {unknown[0]} is not supported by this endpoint")
        budget_fields = [f for f in ("daily_budget", "lifetime_budget") if f in params]
        if len(budget_fields) > 1:
            raise _invalid("Only one of daily_budget and lifetime_budget can be set")
        row = entities.filter(pl.col("entity_id") == entity_id).row(0, named=True)
        if budget_fields:
            name = budget_fields[0]
            raw = params[name]
            text = str(raw)
            if isinstance(raw, bool) or not text.isdigit():
                raise _invalid(
                    f"Param {name} must be an integer number of minor units, got {raw!r}"
                )
            value = int(text)
            if row["entity_type"] == "adset" and row["budget_type"] is None:
                raise _invalid(
                    "You can't set a budget on this ad set: its campaign uses campaign budget "
                    "(CBO)",
                    subcode=1885621,
                )
            minimum = self.minimum_budgets()["min_daily_budget_imp"]
            if name == "daily_budget" and value < minimum:
                raise _invalid(
                    f"The daily budget must be at least {minimum} minor units of "
                    f"{acct.currency}, got {value}"
                )
            self._count_edit(entity_id)
            try:
                acct.apply_budget_change(entity_id, **{name: value})
            except ValueError as exc:
                self._edits[entity_id].pop()
                raise _invalid(str(exc)) from None
        if "status" in params:
            status = str(params["status"])
            if status not in ("ACTIVE", "PAUSED"):
                raise _invalid(f"Param status must be ACTIVE or PAUSED, got {status!r}")
            acct.set_status(entity_id, status)
        return {"success": True}

    def _count_edit(self, entity_id: str) -> None:
        """Meta allows 4 budget edits of one ad set per hour: of the account's clock, or of
        wall time for a long-running server whose account clock does not move."""
        now_sim, now_wall = self.account.now, self._clock()
        recent = [
            (sim, wall)
            for sim, wall in self._edits[entity_id]
            if now_sim - sim < timedelta(hours=1) and now_wall - wall < 3600
        ]
        if len(recent) >= BUDGET_EDITS_PER_HOUR:
            self._edits[entity_id] = recent
            raise ApiError(
                400,
                613,
                "(#613) The budget of this ad set has been changed too many times. Budget "
                "changes are limited to 4 per hour; try again later.",
                subcode=1487632,
                user_msg="Too many budget changes: wait an hour before editing this budget again.",
            )
        self._edits[entity_id] = [*recent, (now_sim, now_wall)]

    # -- insights ----------------------------------------------------------------------------

    def _insights_spec(self, params: Mapping[str, Any], *, asynchronous: bool) -> dict[str, Any]:
        level = params.get("level") or "account"
        if level not in ("account", "campaign", "adset"):
            raise _invalid(
                f"level must be account, campaign or adset (ad is not simulated), got {level!r}"
            )
        fields = [f for f in str(params.get("fields") or "spend,impressions").split(",") if f]
        for name in fields:
            if name not in INSIGHT_FIELDS:
                raise _invalid(
                    f"{name} is not valid for fields param. please check "
                    "https://developers.facebook.com/docs/marketing-api/reference/ads-insights/ "
                    "for all valid values"
                )
        breakdowns = [b for b in str(params.get("breakdowns") or "").split(",") if b]
        if breakdowns not in ([], [HOURLY_BREAKDOWN]):
            raise _invalid(f"breakdowns {breakdowns} are not simulated; use {HOURLY_BREAKDOWN}")
        action_breakdowns = str(params.get("action_breakdowns") or "action_type")
        if action_breakdowns != "action_type":
            raise _invalid(f"action_breakdowns {action_breakdowns!r} is not simulated")
        increment = str(params.get("time_increment") or "all_days")
        if increment not in ("1", "all_days"):
            raise _invalid(f"time_increment must be 1 or all_days, got {increment!r}")
        since, until = self._time_range(params)
        hourly = bool(breakdowns)
        days = (until - since).days + 1
        if hourly and not asynchronous and days > self.sync_max_days:
            raise ApiError(
                500,
                1,
                "Please reduce the amount of data you're asking for, then retry your request",
            )
        return {
            "level": level,
            "fields": fields,
            "hourly": hourly,
            "daily": increment == "1" or hourly,
            "since": since,
            "until": until,
        }

    def _time_range(self, params: Mapping[str, Any]) -> tuple[date, date]:
        today = self.account.now.date()
        if params.get("time_range"):
            raw = params["time_range"]
            try:
                value = raw if isinstance(raw, dict) else json.loads(str(raw).replace("'", '"'))
                since = date.fromisoformat(value["since"])
                until = date.fromisoformat(value["until"])
            except (ValueError, KeyError, TypeError):
                raise _invalid(
                    f"time_range must be {{'since': date, 'until': date}}, got {raw!r}"
                ) from None
        else:
            preset = str(params.get("date_preset") or "last_7d")
            if preset not in DATE_PRESETS:
                raise _invalid(f"date_preset {preset!r} is not simulated")
            back = DATE_PRESETS[preset]
            since = today - timedelta(days=back)
            until = today if preset == "today" else today - timedelta(days=1)
        if until < since:
            raise _invalid("The 'since' date must be before the 'until' date")
        return since, until

    def _cached_rows(self, spec: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Rows of a synchronous query, kept while the account does not change, so that
        paging through them does not recompute every page."""
        key = json.dumps(
            [spec, str(self.account.now), len(self.account.state()["changes"])], default=str
        )
        if key not in self._row_cache:
            if len(self._row_cache) >= 8:
                self._row_cache.pop(next(iter(self._row_cache)))
            self._row_cache[key] = self._insight_rows(spec)
        return self._row_cache[key]

    def _insight_rows(self, spec: Mapping[str, Any]) -> list[dict[str, Any]]:
        acct = self.account
        first = acct.scenario.start
        since, until = max(spec["since"], first), spec["until"]
        if until < since:
            return []
        frame = acct.hourly_insights(since, until)
        if frame.height == 0:
            return []
        entities = acct.entities()
        names = dict(zip(entities["entity_id"].to_list(), entities["name"].to_list(), strict=True))
        keys = {"account": [], "campaign": ["campaign_id"], "adset": ["campaign_id", "adset_id"]}[
            spec["level"]
        ]
        if spec["hourly"]:
            keys = [*keys, "date", "hour"]
        elif spec["daily"]:
            keys = [*keys, "date"]
        metrics = [
            pl.col(c).sum()
            for c in ("spend", "impressions", "reach", "clicks", "conversions", "purchase_value")
        ]
        grouped = frame.group_by(keys).agg(metrics) if keys else frame.select(metrics)
        grouped = grouped.filter((pl.col("impressions") > 0) | (pl.col("spend") > 0))
        order = [k for k in ("date", "hour", "campaign_id", "adset_id") if k in keys]
        if order:
            grouped = grouped.sort(order)
        rows = []
        for rec in grouped.iter_rows(named=True):
            day = rec.get("date")
            start, stop = (day, day) if day is not None else (spec["since"], spec["until"])
            rows.append(self._insight_json(rec, spec, start, stop, names))
        return rows

    def _money(self, amount: float) -> str:
        quantum = Decimal(1) if self._places == 0 else Decimal("0.01")
        return str(Decimal(repr(amount)).quantize(quantum, rounding=ROUND_HALF_UP))

    def _insight_json(
        self,
        rec: Mapping[str, Any],
        spec: Mapping[str, Any],
        start: date,
        stop: date,
        names: Mapping[str, str],
    ) -> dict[str, Any]:
        spend, imps, clicks = rec["spend"], int(rec["impressions"]), int(rec["clicks"])
        reach, conv, value = int(rec["reach"]), float(rec["conversions"]), rec["purchase_value"]
        conv_text = str(int(conv)) if conv == int(conv) else _number(conv)
        actions = []
        if clicks:
            actions.append({"action_type": "link_click", "value": str(clicks)})
        if conv > 0:
            actions += [{"action_type": a, "value": conv_text} for a in PURCHASE_ALIASES]
        values = {
            "account_id": self.digits,
            "account_name": f"Simulated account {self.digits}",
            "account_currency": self.account.currency,
            "campaign_id": rec.get("campaign_id"),
            "campaign_name": names.get(rec.get("campaign_id") or ""),
            "adset_id": rec.get("adset_id"),
            "adset_name": names.get(rec.get("adset_id") or ""),
            "spend": self._money(spend) if spend > 0 else None,
            "impressions": str(imps) if imps else None,
            "clicks": str(clicks) if clicks else None,
            "ctr": _number(100.0 * clicks / imps) if imps and clicks else None,
            "cpc": _number(spend / clicks) if clicks and spend > 0 else None,
            "cpm": _number(1000.0 * spend / imps) if imps and spend > 0 else None,
            "reach": None if spec["hourly"] or not reach else str(reach),
            "frequency": None if spec["hourly"] or not reach else _number(imps / reach),
            "actions": actions or None,
            "action_values": [
                {"action_type": a, "value": self._money(value)} for a in PURCHASE_ALIASES
            ]
            if value > 0
            else None,
            "purchase_roas": [{"action_type": "omni_purchase", "value": _number(value / spend)}]
            if value > 0 and spend > 0
            else None,
            "cost_per_action_type": [
                {"action_type": a, "value": _number(spend / conv)} for a in PURCHASE_ALIASES
            ]
            if conv > 0 and spend > 0
            else None,
        }
        row = {name: values[name] for name in spec["fields"] if values.get(name) is not None}
        row["date_start"] = start.isoformat()
        row["date_stop"] = stop.isoformat()
        if spec["hourly"]:
            hour = int(rec["hour"])
            row[HOURLY_BREAKDOWN] = f"{hour:02d}:00:00 - {hour:02d}:59:59"
        return row

    # -- report runs -------------------------------------------------------------------------

    def _poll_run(self, run_id: str) -> dict[str, Any]:
        run = self._runs[run_id]
        fault = self.faults.pop(f"GET {run_id}", kind="report_status")
        if fault is not None:
            run["status"] = fault["async_status"]
        run["polls"] += 1
        spec = run["spec"]
        if run["status"] is not None:
            status, pct = run["status"], 0
        elif run["polls"] > self.async_polls:
            status, pct = "Job Completed", 100
        else:
            step = min(run["polls"], len(ASYNC_STATUSES)) - 1
            status, pct = ASYNC_STATUSES[step], int(100 * (run["polls"] - 1) / self.async_polls)
        body = {
            "id": run_id,
            "account_id": self.digits,
            "time_ref": int(time.time()),
            "async_status": status,
            "async_percent_completion": pct,
            "date_start": spec["since"].isoformat(),
            "date_stop": spec["until"].isoformat(),
        }
        if status == "Job Completed":
            run["done"] = True
            body["time_completed"] = int(time.time())
        return body

    def _run_insights(self, run_id: str, params: Mapping[str, Any], next_base: str) -> Any:
        run = self._runs[run_id]
        if not run.get("done"):
            raise ApiError(
                400,
                2601,
                "Error accessing adreport job.",
                subcode=1815107,
                is_transient=True,
                user_msg="Sorry, the report cannot be loaded successfully. Please check if your "
                "job status is completed instead of failed or running before fetching the data.",
            )
        if "rows" not in run:
            run["rows"] = self._insight_rows(run["spec"])
        return self._paged(run["rows"], params, next_base)

    # -- paging ------------------------------------------------------------------------------

    def _paged(self, rows: list[Any], params: Mapping[str, Any], next_base: str) -> dict[str, Any]:
        try:
            limit = max(1, min(5000, int(params.get("limit") or 25)))
        except ValueError:
            raise _invalid(f"limit must be an integer, got {params.get('limit')!r}") from None
        offset = _offset(str(params["after"])) if params.get("after") else 0
        chunk = rows[offset : offset + limit]
        body: dict[str, Any] = {"data": chunk}
        if not rows:
            return body
        paging: dict[str, Any] = {
            "cursors": {
                "before": _cursor(offset),
                "after": _cursor(offset + max(len(chunk), 1) - 1),
            }
        }
        keep = {k: v for k, v in params.items() if k not in ("after", "before", "access_token")}
        keep = {k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in keep.items()}
        if offset + limit < len(rows):
            query = urlencode(
                {**keep, "access_token": self._token, "after": _cursor(offset + limit)}
            )
            paging["next"] = f"{next_base}?{query}"
            paging["cursors"]["after"] = _cursor(offset + limit)
        if offset > 0:
            query = urlencode(
                {**keep, "access_token": self._token, "before": _cursor(max(0, offset - limit))}
            )
            paging["previous"] = f"{next_base}?{query}"
        body["paging"] = paging
        return body


def _fields(params: Mapping[str, Any], kind: str) -> list[str]:
    fields = [f for f in str(params.get("fields") or "id").split(",") if f]
    for name in fields:
        if name not in ENTITY_FIELDS[kind]:
            node = "AdCampaignGroup" if kind == "campaign" else "AdCampaign"
            raise _invalid(f"Tried accessing nonexisting field ({name}) on node type ({node})")
    return fields


def _unsupported(method: str, object_id: str) -> ApiError:
    return ApiError(
        400,
        100,
        f"Unsupported {method.lower()} request. Object with ID '{object_id}' does not exist, "
        "cannot be loaded due to missing permissions, or does not support this operation. "
        "Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api",
        subcode=33,
        error_type="GraphMethodException",
    )
