"""The Marketing API over httpx: a Graph API client and the :class:`MetaApiSource` on top of it.

:class:`GraphApiClient` knows HTTP: the token, the version prefix, cursor paging, async report
runs, the usage headers (it slows down before Meta's limit) and retries with jittered
exponential back-off (tenacity) within a bounded total time. :class:`MetaApiSource` knows the
ad account: it implements :class:`budget_pipeline.sources.base.AdSource` with the shapes of
:mod:`budget_pipeline.contracts`.

The access token travels only in the ``Authorization`` header. It is never logged, never put
in a URL, and scrubbed from every message: Meta's ``paging.next`` URLs embed it, so the client
drops it from them and re-issues the request against the configured host only.

Reach of hourly rows: Meta does not return ``reach`` with hourly breakdowns (unique people
do not add up over hours). :meth:`MetaApiSource.hourly_insights` makes a second, daily-level
call for each ad set's reach per day and spreads it over that day's hours in proportion to
impressions with the largest-remainder rule (:func:`parsing.spread_daily_reach`): the hours of
a day sum exactly to Meta's daily reach. Summing across days counts a person once per day.
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import httpx
import polars as pl
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, field_validator
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
    wait_fixed,
)

from budget_pipeline import contracts
from budget_pipeline.money import MoneyError, minor_factor
from budget_pipeline.sources.meta_api import parsing
from budget_pipeline.sources.meta_api.errors import (
    AsyncReportError,
    ConfigError,
    GraphApiError,
    NetworkError,
    PayloadError,
    QueryTooLargeError,
    ServerError,
    ThrottlingError,
    classify,
    classify_non_json,
    redact,
)
from budget_pipeline.sources.meta_api.parsing import ConversionSpec

logger = logging.getLogger(__name__)

DEFAULT_GRAPH_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v25.0"
USAGE_HEADERS = (
    "x-app-usage",
    "x-ad-account-usage",
    "x-business-use-case-usage",
    "x-fb-ads-insights-throttle",
)


# ---------------------------------------------------------------------------------------------
# Settings


class MetaApiSettings(BaseModel):
    """``META_ACCESS_TOKEN``, ``META_AD_ACCOUNT_ID``, ``META_GRAPH_URL``, ``META_API_VERSION``."""

    model_config = ConfigDict(frozen=True)

    access_token: SecretStr
    ad_account_id: str
    graph_url: str = DEFAULT_GRAPH_URL
    api_version: str = DEFAULT_API_VERSION

    @field_validator("ad_account_id")
    @classmethod
    def _act(cls, value: str) -> str:
        value = value.strip()
        digits = value.removeprefix("act_")
        if not digits.isdigit():
            raise ValueError(f"expected 'act_<digits>' or '<digits>', got {value!r}")
        return f"act_{digits}"

    @field_validator("graph_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"expected an http(s) base URL, got {value!r}")
        return value.rstrip("/")

    @field_validator("api_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not re.fullmatch(r"v\d+\.\d+", value):
            raise ValueError(f"expected a version like 'v25.0', got {value!r}")
        return value

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> MetaApiSettings | None:
        """Settings from the environment; None when ``META_ACCESS_TOKEN`` is unset or empty."""
        env = os.environ if env is None else env
        token = env.get("META_ACCESS_TOKEN", "").strip()
        if not token:
            return None
        account = env.get("META_AD_ACCOUNT_ID", "").strip()
        if not account:
            raise ConfigError("META_ACCESS_TOKEN is set but META_AD_ACCOUNT_ID is not")
        values = {"access_token": token, "ad_account_id": account}
        if env.get("META_GRAPH_URL", "").strip():
            values["graph_url"] = env["META_GRAPH_URL"].strip()
        if env.get("META_API_VERSION", "").strip():
            values["api_version"] = env["META_API_VERSION"].strip()
        try:
            return cls(**values)
        except ValidationError as exc:
            names = {
                "ad_account_id": "META_AD_ACCOUNT_ID",
                "graph_url": "META_GRAPH_URL",
                "api_version": "META_API_VERSION",
            }
            problems = "; ".join(
                f"{names.get(str(e['loc'][0]), e['loc'][0])}: "
                + e["msg"].removeprefix("Value error, ")
                for e in exc.errors()
            )
            raise ConfigError(redact(problems, [token])) from None


# ---------------------------------------------------------------------------------------------
# Retry and pacing policies


@dataclass(frozen=True)
class RetryPolicy:
    """Jittered exponential back-off for transient errors, bounded in attempts and total time.

    Wait before retry n (n = 1, 2, ...) is ``initial × 2^(n-1) + U(0, jitter)`` capped at
    ``max_wait``, or longer when Meta says when access comes back; no retry starts once the
    next wait would end after ``max_total`` seconds from the first attempt.
    """

    max_attempts: int = 6
    initial: float = 2.0
    max_wait: float = 60.0
    jitter: float = 1.0
    max_total: float = 300.0


@dataclass(frozen=True)
class PacePolicy:
    """Slow down before the limit: no pause below ``slow_at_pct`` of the highest usage header,
    then a pause growing linearly to ``max_delay`` seconds at 100 %; at or above 100 %, wait
    what Meta estimates (``estimated_time_to_regain_access``), capped at ``max_wait``."""

    slow_at_pct: float = 75.0
    max_delay: float = 30.0
    max_wait: float = 300.0


@dataclass(frozen=True)
class Usage:
    """What the last response's usage headers said, in percent of each limit."""

    app: Mapping[str, Any] = field(default_factory=dict)
    ad_account: Mapping[str, Any] = field(default_factory=dict)
    business: Mapping[str, list[Mapping[str, Any]]] = field(default_factory=dict)
    insights: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Usage:
        def load(name: str) -> Any:
            raw = headers.get(name)
            if not raw:
                return {}
            try:
                value = json.loads(raw)
            except ValueError:
                logger.debug("ignoring unparseable %s header", name)
                return {}
            return value if isinstance(value, dict) else {}

        business = {
            str(k): [e for e in v if isinstance(e, dict)]
            for k, v in load("x-business-use-case-usage").items()
            if isinstance(v, list)
        }
        return cls(
            app=load("x-app-usage"),
            ad_account=load("x-ad-account-usage"),
            business=business,
            insights=load("x-fb-ads-insights-throttle"),
        )

    @staticmethod
    def _pct(value: Any) -> float:
        try:
            return float(value)
        except (TypeError, ValueError):
            return 0.0

    @property
    def utilisation(self) -> float:
        """The highest percentage any header reports (0 when none)."""
        values = [self._pct(self.app.get(k)) for k in ("call_count", "total_cputime", "total_time")]
        values.append(self._pct(self.ad_account.get("acc_id_util_pct")))
        values += [self._pct(self.insights.get(k)) for k in ("app_id_util_pct", "acc_id_util_pct")]
        for entries in self.business.values():
            for e in entries:
                values += [
                    self._pct(e.get(k)) for k in ("call_count", "total_cputime", "total_time")
                ]
        return max(values, default=0.0)

    @property
    def regain_seconds(self) -> float:
        """Seconds until Meta expects access back (0 when not blocked)."""
        minutes = [
            self._pct(e.get("estimated_time_to_regain_access"))
            for entries in self.business.values()
            for e in entries
        ]
        seconds = max(minutes, default=0.0) * 60.0
        if self._pct(self.ad_account.get("acc_id_util_pct")) >= 100:
            seconds = max(seconds, self._pct(self.ad_account.get("reset_time_duration")))
        return seconds


@dataclass(frozen=True)
class Page:
    """One response page: which request, its number in the sequence, and the JSON body."""

    request: str
    number: int
    body: Mapping[str, Any]

    @property
    def label(self) -> str:
        return f"{self.request} page {self.number}"


# ---------------------------------------------------------------------------------------------
# The HTTP client


class GraphApiClient:
    """Graph API over httpx with paging, async report runs, pacing and retries.

    ``sleep`` and ``clock`` are injectable so tests run fast; ``transport`` is httpx's.
    """

    def __init__(
        self,
        *,
        access_token: str | SecretStr,
        graph_url: str = DEFAULT_GRAPH_URL,
        api_version: str = DEFAULT_API_VERSION,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        pace: PacePolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        poll_interval: float = 5.0,
        async_timeout: float = 1800.0,
        async_attempts: int = 2,
        max_pages: int = 10_000,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        token = access_token if isinstance(access_token, SecretStr) else SecretStr(access_token)
        if not token.get_secret_value():
            raise ConfigError("the access token is empty")
        self._token = token
        self.graph_url = graph_url.rstrip("/")
        self.api_version = api_version
        self.retry = retry or RetryPolicy()
        self.pace = pace or PacePolicy()
        self._sleep = sleep
        self._clock = clock
        self.poll_interval = poll_interval
        self.async_timeout = async_timeout
        self.async_attempts = async_attempts
        self.max_pages = max_pages
        self.timeout = timeout
        self.usage = Usage()
        self.server_time: datetime | None = None  # from the last response's Date header (UTC)
        self.paced_seconds = 0.0  # total time spent slowing down for the usage headers
        self.retries = 0
        self._http = httpx.Client(
            base_url=self.graph_url,
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json"},
            follow_redirects=False,
        )

    @classmethod
    def from_settings(cls, settings: MetaApiSettings, **kwargs: Any) -> GraphApiClient:
        return cls(
            access_token=settings.access_token,
            graph_url=settings.graph_url,
            api_version=settings.api_version,
            **kwargs,
        )

    def __repr__(self) -> str:
        return f"GraphApiClient(graph_url={self.graph_url!r}, api_version={self.api_version!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GraphApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one request ---------------------------------------------------------------------------

    def _scrub(self, text: object) -> str:
        return redact(text, [self._token.get_secret_value()])

    def _path(self, path: str) -> str:
        path = path.strip("/")
        if re.match(r"^v\d+\.\d+(/|$)", path):
            return f"/{path}"
        return f"/{self.api_version}/{path}"

    def _pace_wait(self) -> None:
        usage, p = self.usage, self.pace
        util = usage.utilisation
        if util < p.slow_at_pct:
            return
        fraction = min(1.0, (util - p.slow_at_pct) / max(1e-9, 100.0 - p.slow_at_pct))
        delay = fraction * p.max_delay
        if util >= 100.0 or usage.regain_seconds > 0:
            delay = max(delay, usage.regain_seconds)
        delay = min(delay, p.max_wait)
        if delay <= 0:
            return
        logger.info("Graph API usage at %.0f%%: pausing %.2f s before the next call", util, delay)
        self.paced_seconds += delay
        self._sleep(delay)

    def _send_once(
        self,
        method: str,
        path: str,
        params: Any = None,
        data: Mapping[str, Any] | None = None,
    ) -> Any:
        label = f"{method} {path}"
        self._pace_wait()
        started = self._clock()
        try:
            response = self._http.request(
                method,
                path,
                params=params,
                data=data,
                headers={"Authorization": f"Bearer {self._token.get_secret_value()}"},
            )
        except httpx.TimeoutException as exc:
            raise NetworkError(
                f"no answer within {self.timeout:g} s ({type(exc).__name__})", request=label
            ) from None
        except httpx.TransportError as exc:
            raise NetworkError(
                f"connection failed: {type(exc).__name__}: {self._scrub(exc)}", request=label
            ) from None
        self.usage = Usage.from_headers(response.headers)
        self.server_time = _server_time(response.headers) or self.server_time
        logger.debug(
            "%s -> HTTP %s in %.3f s (usage %.0f%%)",
            label,
            response.status_code,
            self._clock() - started,
            self.usage.utilisation,
        )
        try:
            body = response.json()
        except ValueError:
            if response.status_code < 400:
                raise ServerError(
                    "HTTP 200 returned a body that is not JSON",
                    http_status=response.status_code,
                    request=label,
                ) from None
            raise classify_non_json(
                response.status_code,
                response.text,
                request=label,
                secrets=[self._token.get_secret_value()],
            ) from None
        error = body.get("error") if isinstance(body, dict) else None
        if response.status_code >= 400 or error is not None:
            if isinstance(error, str):
                error = {"message": error}
            raise classify(
                response.status_code,
                error if isinstance(error, dict) else None,
                request=label,
                secrets=[self._token.get_secret_value()],
                retry_after=self.usage.regain_seconds or None,
            )
        return body

    # -- retries -----------------------------------------------------------------------------

    def _wait(self, state: RetryCallState) -> float:
        p = self.retry
        wait = wait_exponential_jitter(initial=p.initial, max=p.max_wait, jitter=p.jitter)(state)
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, ThrottlingError) and exc.retry_after:
            wait = max(wait, exc.retry_after)
        return wait

    def _before_sleep(self, state: RetryCallState) -> None:
        self.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        logger.warning(
            "retrying in %.2f s (attempt %d of %d): %s",
            state.upcoming_sleep,
            state.attempt_number + 1,
            self.retry.max_attempts,
            exc,
        )

    def _call(
        self,
        method: str,
        path: str,
        params: Any = None,
        data: Mapping[str, Any] | None = None,
        *,
        before_retry: Callable[[], Any] | None = None,
    ) -> Any:
        """One request with retries; ``before_retry`` (if given) runs before every retry and
        a non-None answer ends the call with it instead of re-sending."""
        p = self.retry
        attempts = 0

        def send() -> Any:
            nonlocal attempts
            attempts += 1
            if attempts > 1 and before_retry is not None:
                settled = before_retry()
                if settled is not None:
                    return settled
            return self._send_once(method, self._path(path), params, data)

        retrying = Retrying(
            retry=retry_if_exception(lambda e: isinstance(e, GraphApiError) and e.transient),
            stop=stop_after_attempt(p.max_attempts) | stop_before_delay(p.max_total),
            wait=self._wait,
            sleep=self._sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            return retrying(send)
        except GraphApiError as exc:
            if exc.transient:
                attempts = retrying.statistics.get("attempt_number", 1)
                exc.hint = f"gave up after {attempts} attempt(s) within {p.max_total:g} s" + (
                    f"; Meta expects access back in {exc.retry_after / 60:.0f} min"
                    if isinstance(exc, ThrottlingError) and exc.retry_after
                    else ""
                )
                exc.args = (exc._render(),)
            raise

    # -- public calls ----------------------------------------------------------------------

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """``GET /{version}/{path}`` with retries; the JSON body."""
        return self._call("GET", path, params=dict(params or {}))

    def post(
        self,
        path: str,
        data: Mapping[str, Any],
        *,
        landed: Callable[[], bool] | None = None,
    ) -> Any:
        """``POST /{version}/{path}`` with form fields (values sent as strings).

        A write is retried only after ``landed()`` (a read-back) says it did not take effect:
        when a reply is lost, the write may well have landed, and sending it again costs one of
        Meta's 4 budget edits per hour (and eventually error 613/1487632).
        """
        form = {k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}

        def confirm() -> Any:
            if landed is not None and landed():
                logger.info("POST %s: read back, the write had landed; not sent again", path)
                return {"success": True}
            return None

        return self._call("POST", path, data=form, before_retry=confirm)

    def follow(self, first: Page) -> Iterator[Page]:
        """``first`` and every page after it, following ``paging.next`` until it is absent."""
        page = first
        seen: set[str] = set()
        while True:
            yield page
            paging = page.body.get("paging") if isinstance(page.body, Mapping) else None
            nxt = paging.get("next") if isinstance(paging, Mapping) else None
            if not nxt:
                return
            path, params = self._reanchor(str(nxt))
            key = json.dumps([path, params])
            if key in seen or page.number >= self.max_pages:
                raise PayloadError(
                    f"paging loop at {page.label}: next repeats or exceeds {self.max_pages} pages",
                    page=page.label,
                    field="paging.next",
                )
            seen.add(key)
            page = Page(page.request, page.number + 1, self._call("GET", path, params=params))

    def iter_pages(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[Page]:
        """Every page of a list edge (cursor paging via ``paging.next``)."""
        request = f"GET {self._path(path)}"
        yield from self.follow(Page(request, 1, self.get(path, params)))

    def _reanchor(self, next_url: str) -> tuple[str, list[tuple[str, str]]]:
        """Path and query of Meta's ``next`` URL without its token, for the configured host."""
        parts = urlsplit(next_url)
        params = [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if k not in ("access_token", "appsecret_proof")
        ]
        return parts.path or "/", params

    def run_async_report(
        self, object_id: str, params: Mapping[str, Any], *, limit: int = 500
    ) -> Iterator[Page]:
        """Start an Insights report run, wait for it, then page through its rows.

        ``POST /{object_id}/insights`` gives a ``report_run_id``; ``GET /{report_run_id}`` is
        polled until ``async_status`` is "Job Completed" with ``async_percent_completion`` 100;
        rows come from ``GET /{report_run_id}/insights``. A failed or skipped job is started
        again (``async_attempts`` in all).
        """
        retrying = Retrying(
            retry=retry_if_exception_type(AsyncReportError),
            stop=stop_after_attempt(self.async_attempts),
            wait=wait_fixed(self.poll_interval),
            sleep=self._sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        run_id = retrying(self._async_job, object_id, params)
        yield from self.iter_pages(f"{run_id}/insights", {"limit": limit})

    def _async_job(self, object_id: str, params: Mapping[str, Any]) -> str:
        started = self._clock()
        body = self.post(f"{object_id}/insights", params)
        run_id = str(body.get("report_run_id") or "") if isinstance(body, Mapping) else ""
        if not run_id.isdigit():
            raise PayloadError(
                f"POST {object_id}/insights did not return a report_run_id: {body!r}",
                page=f"POST {object_id}/insights",
                field="report_run_id",
                value=body,
            )
        while True:
            job = self.get(run_id)
            status = str(job.get("async_status"))
            pct = job.get("async_percent_completion")
            logger.debug("report run %s: %s (%s%%)", run_id, status, pct)
            if status == "Job Completed" and str(pct) == "100":
                return run_id
            if status in ("Job Failed", "Job Skipped"):
                raise AsyncReportError(
                    f"report run {run_id} ended with async_status {status!r}",
                    request=f"GET {self._path(run_id)}",
                )
            if self._clock() - started > self.async_timeout:
                raise AsyncReportError(
                    f"report run {run_id} still {status!r} ({pct}%) after {self.async_timeout:g} s",
                    request=f"GET {self._path(run_id)}",
                )
            self._sleep(self.poll_interval)


# ---------------------------------------------------------------------------------------------
# The ad account as an AdSource


HOURLY_FIELDS = (
    "account_currency",
    "campaign_id",
    "adset_id",
    "spend",
    "impressions",
    "clicks",
    "ctr",
    "actions",
    "action_values",
    "purchase_roas",
    "cost_per_action_type",
)
DAILY_FIELDS = (*HOURLY_FIELDS[:5], "reach", "frequency", *HOURLY_FIELDS[5:])
REACH_FIELDS = ("campaign_id", "adset_id", "impressions", "reach")
CAMPAIGN_FIELDS = (
    "id,name,status,effective_status,daily_budget,lifetime_budget,budget_remaining,stop_time"
)
ADSET_FIELDS = (
    "id,name,campaign_id,status,effective_status,daily_budget,lifetime_budget,"
    "budget_remaining,end_time"
)


def _scrub_payload(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(self: MetaApiSource, *args: Any, **kwargs: Any) -> Any:
        with self._scrubbed():
            return method(self, *args, **kwargs)

    return wrapper


class MetaApiSource:
    """A real ad account through the Marketing API, as an :class:`AdSource`.

    ``conversion`` picks the ``action_type`` that counts as a conversion (one per campaign,
    default ``purchase``); ranges longer than ``async_after_days`` use asynchronous report
    runs, and a synchronous request Meta finds too large is retried as one.
    """

    def __init__(
        self,
        client: GraphApiClient,
        account_id: str,
        *,
        conversion: ConversionSpec | str = "purchase",
        async_after_days: int = 7,
        chunk_days: int = 31,
        page_limit: int = 500,
    ) -> None:
        self.client = client
        self.account_id = MetaApiSettings._act(account_id)
        self.conversion = (
            conversion if isinstance(conversion, ConversionSpec) else ConversionSpec(conversion)
        )
        self.async_after_days = async_after_days
        self.chunk_days = chunk_days
        self.page_limit = page_limit
        self._account: Mapping[str, Any] | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **kwargs: Any) -> MetaApiSource | None:
        """A source configured from ``META_*`` variables; None when no token is set.

        Keyword arguments go to :class:`GraphApiClient` (``retry``, ``pace``, ``timeout``...)
        or to this class (``conversion``, ``async_after_days``, ``chunk_days``).
        """
        settings = MetaApiSettings.from_env(env)
        if settings is None:
            return None
        own = {
            k: kwargs.pop(k)
            for k in ("conversion", "async_after_days", "chunk_days", "page_limit")
            if k in kwargs
        }
        client = GraphApiClient.from_settings(settings, **kwargs)
        return cls(client, settings.ad_account_id, **own)

    def __repr__(self) -> str:
        return f"MetaApiSource(account_id={self.account_id!r}, client={self.client!r})"

    @contextlib.contextmanager
    def _scrubbed(self) -> Iterator[None]:
        """Re-raise a :class:`PayloadError` with the token scrubbed from what it quotes (a page
        could carry it anywhere, e.g. in a malformed field)."""
        try:
            yield
        except PayloadError as exc:
            secret = [self.client._token.get_secret_value()]
            value = exc.value
            if value is not None and secret[0] in str(value):
                value = redact(value, secret)
            raise PayloadError(
                redact(str(exc), secret),
                page=redact(exc.page, secret),
                row=exc.row,
                field=exc.field,
                value=value,
            ) from None

    def close(self) -> None:
        self.client.close()

    # -- the account -------------------------------------------------------------------------

    @_scrub_payload
    def _account_info(self) -> Mapping[str, Any]:
        if self._account is None:
            body = self.client.get(self.account_id, {"fields": "account_id,currency,timezone_name"})
            page = f"GET {self.client._path(self.account_id)}"
            for name in ("currency", "timezone_name"):
                if not isinstance(body.get(name), str) or not body.get(name):
                    raise PayloadError(
                        f"malformed page {page}: field {name!r} is {body.get(name)!r}",
                        page=page,
                        field=name,
                        value=body.get(name),
                    )
            try:
                minor_factor(body["currency"])
            except MoneyError as exc:
                raise PayloadError(
                    f"malformed page {page}: field 'currency': {exc}",
                    page=page,
                    field="currency",
                    value=body["currency"],
                ) from None
            self._account = body
        return self._account

    @property
    def currency(self) -> str:
        return str(self._account_info()["currency"])

    @property
    def timezone(self) -> str:
        return str(self._account_info()["timezone_name"])

    @property
    def now(self) -> datetime:
        """The API server's clock (the last response's ``Date`` header) in the account's
        timezone, naive like the simulated account's; the local clock before any response."""
        server = self.client.server_time
        now = server if server is not None else datetime.now(UTC)
        return now.astimezone(ZoneInfo(self.timezone)).replace(tzinfo=None, microsecond=0)

    # -- entities --------------------------------------------------------------------------

    def _records(self, page: Page) -> list[Mapping[str, Any]]:
        data = page.body.get("data") if isinstance(page.body, Mapping) else None
        if not isinstance(data, list):
            raise PayloadError(
                f"malformed page {page.label}: 'data' is {type(data).__name__}, not a list",
                page=page.label,
                field="data",
            )
        return data

    @_scrub_payload
    def entities(self) -> pl.DataFrame:
        """Campaigns and ad sets with budgets and status now (contracts.ENTITIES)."""
        frames = []
        for edge, fields, kind in (
            ("campaigns", CAMPAIGN_FIELDS, "campaign"),
            ("adsets", ADSET_FIELDS, "adset"),
        ):
            for page in self.client.iter_pages(
                f"{self.account_id}/{edge}", {"fields": fields, "limit": self.page_limit}
            ):
                frames.append(
                    parsing.parse_entities(
                        self._records(page),
                        page=page.label,
                        entity_type=kind,
                        currency=self.currency,
                        timezone=self.timezone,
                    )
                )
        if not frames:
            return contracts.empty(contracts.ENTITIES)
        return pl.concat(frames, how="vertical")

    def _collect(self, path: str, params: dict | None, parse, schema) -> pl.DataFrame:
        """Every page of ``path`` parsed by ``parse`` into one frame (``schema`` when empty)."""
        frames = [
            parse(self._records(page), page=page.label)
            for page in self.client.iter_pages(path, params or {})
        ]
        return pl.concat(frames, how="vertical") if frames else contracts.empty(schema)

    @_scrub_payload
    def learning_stage(self) -> pl.DataFrame:
        """Each ad set's ``learning_stage_info``: entity_id, in_learning, learning_status."""
        return self._collect(
            f"{self.account_id}/adsets",
            {"fields": "id,campaign_id,learning_stage_info", "limit": self.page_limit},
            parsing.parse_learning_stage,
            parsing.LEARNING_STAGE,
        )

    @_scrub_payload
    def minimum_budgets(self) -> pl.DataFrame:
        """``/act_{id}/minimum_budgets``: the account's minimum daily budgets (minor units)."""
        return self._collect(
            f"{self.account_id}/minimum_budgets",
            None,
            parsing.parse_minimum_budgets,
            parsing.MINIMUM_BUDGETS,
        )

    # -- insights --------------------------------------------------------------------------

    def _insight_params(
        self, start: date, end: date, *, hourly: bool, fields: tuple[str, ...]
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "level": "adset",
            "fields": ",".join(fields),
            "time_range": json.dumps({"since": start.isoformat(), "until": end.isoformat()}),
            "time_increment": "1",
            "action_breakdowns": "action_type",
            "limit": str(self.page_limit),
        }
        if hourly:
            params["breakdowns"] = parsing.HOURLY_BREAKDOWN
        return params

    def _pages(self, start: date, end: date, *, hourly: bool, fields: tuple[str, ...]):
        params = self._insight_params(start, end, hourly=hourly, fields=fields)
        days = (end - start).days + 1
        if days > self.async_after_days:
            return self._async_pages(start, end, params, hourly=hourly, fields=fields)
        try:
            return list(self.client.iter_pages(f"{self.account_id}/insights", params))
        except QueryTooLargeError as exc:
            logger.info("synchronous insights too large (%s); using a report run", exc.message)
            return self._async_pages(start, end, params, hourly=hourly, fields=fields)

    def _async_pages(self, start, end, params, *, hourly, fields) -> list[Page]:
        async_params = {k: v for k, v in params.items() if k != "limit"}
        try:
            return list(
                self.client.run_async_report(self.account_id, async_params, limit=self.page_limit)
            )
        except QueryTooLargeError:
            if start >= end:
                raise
            middle = start + timedelta(days=(end - start).days // 2)
            logger.info("report run too large; splitting %s..%s at %s", start, end, middle)
            return self._async_pages(
                start,
                middle,
                self._insight_params(start, middle, hourly=hourly, fields=fields),
                hourly=hourly,
                fields=fields,
            ) + self._async_pages(
                middle + timedelta(days=1),
                end,
                self._insight_params(middle + timedelta(days=1), end, hourly=hourly, fields=fields),
                hourly=hourly,
                fields=fields,
            )

    @_scrub_payload
    def insights(
        self,
        start: date,
        end: date,
        *,
        hourly: bool = True,
        fields: tuple[str, ...] | None = None,
    ) -> pl.DataFrame:
        """Ad-set Insights for local dates start..end inclusive, hourly or daily (RAW_INSIGHTS).

        Every page is parsed and validated before anything is returned: one malformed page
        raises :class:`PayloadError` and the whole range yields nothing.
        """
        if end < start:
            raise ValueError(f"end {end} is before start {start}")
        fields = fields or (HOURLY_FIELDS if hourly else DAILY_FIELDS)
        pages: list[tuple[str, parsing.RecordSet]] = []
        chunk_start = start
        while chunk_start <= end:
            chunk_end = min(end, chunk_start + timedelta(days=self.chunk_days - 1))
            for page in self._pages(chunk_start, chunk_end, hourly=hourly, fields=fields):
                pages.append((page.label, parsing.insight_records(page.body, page=page.label)))
            chunk_start = chunk_end + timedelta(days=1)
        return parsing.parse_insight_pages(
            pages,
            level="adset",
            hourly=hourly,
            conversion=self.conversion,
            currency=self.currency,
        )

    @_scrub_payload
    def hourly_insights(self, start: date, end: date) -> pl.DataFrame:
        """Hourly ad-set Insights for local dates start..end inclusive (contracts.INSIGHTS).

        ``reach`` comes from a daily-level call spread over the day's hours by impressions
        (see the module docstring); everything else from the hourly breakdown.
        """
        hourly = self.insights(start, end, hourly=True)
        if hourly.height == 0:
            return contracts.empty(contracts.INSIGHTS)
        daily = self.insights(start, end, hourly=False, fields=REACH_FIELDS)
        filled = parsing.spread_daily_reach(
            hourly, daily.select("adset_id", "date", pl.col("reach").fill_null(0))
        )
        frame = filled.sort("date", "hour", "campaign_id", "adset_id")
        return parsing.rows_to_insights(frame)

    # -- budgets and status ----------------------------------------------------------------

    @_scrub_payload
    def read_budget(self, entity_id: str) -> dict:
        """``{"budget_type", "daily_budget", "lifetime_budget", "status"}`` of one entity."""
        body = self.client.get(
            entity_id,
            {"fields": "id,daily_budget,lifetime_budget,budget_remaining,status,effective_status"},
        )
        page = f"GET {self.client._path(entity_id)}"
        frame = parsing.parse_entities(
            [{**body, "id": str(body.get("id", entity_id))}],
            page=page,
            entity_type="campaign",
            currency=self.currency,
            timezone=self.timezone,
        )
        if frame.height == 0:
            return {
                "budget_type": None,
                "daily_budget": None,
                "lifetime_budget": None,
                "status": "PAUSED",
            }
        row = frame.row(0, named=True)
        return {k: row[k] for k in ("budget_type", "daily_budget", "lifetime_budget", "status")}

    def write_budget(
        self, entity_id: str, *, daily_budget: int | None = None, lifetime_budget: int | None = None
    ) -> None:
        """Set one entity's budget in minor units (sent as Meta wants: a string of digits)."""
        given = {
            k: v
            for k, v in (("daily_budget", daily_budget), ("lifetime_budget", lifetime_budget))
            if v is not None
        }
        if len(given) != 1:
            raise ValueError("write_budget needs exactly one of daily_budget or lifetime_budget")
        ((name, value),) = given.items()
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative int of minor units, got {value!r}")
        self._post_ok(
            entity_id,
            {name: str(value)},
            landed=lambda: self.read_budget(entity_id).get(name) == value,
        )
        logger.info("set %s of %s to %d minor units", name, entity_id, value)

    def set_status(self, entity_id: str, status: str) -> None:
        """``"ACTIVE"`` or ``"PAUSED"``."""
        if status not in ("ACTIVE", "PAUSED"):
            raise ValueError(f"status must be 'ACTIVE' or 'PAUSED', got {status!r}")
        self._post_ok(
            entity_id,
            {"status": status},
            landed=lambda: self.read_budget(entity_id).get("status") == status,
        )
        logger.info("set status of %s to %s", entity_id, status)

    @_scrub_payload
    def _post_ok(
        self, entity_id: str, data: Mapping[str, str], *, landed: Callable[[], bool]
    ) -> None:
        body = self.client.post(entity_id, data, landed=landed)
        if not (isinstance(body, Mapping) and body.get("success") is True):
            page = f"POST {self.client._path(entity_id)}"
            raise PayloadError(
                f"{page} did not confirm success: {body!r}",
                page=page,
                field="success",
                value=body,
            )


def _server_time(headers: Mapping[str, str]) -> datetime | None:
    """The ``Date`` header as an aware UTC datetime, or None when absent or unreadable."""
    raw = headers.get("date")
    if not raw:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
