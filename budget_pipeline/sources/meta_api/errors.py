"""Errors of the Marketing API client: what Meta answered, classified for retry or stop.

Meta answers every failure with ``{"error": {"message", "type", "code", "error_subcode",
"fbtrace_id", ...}}`` (sometimes an HTML page with HTTP 500 instead). :func:`classify` turns that
into one class of the :class:`GraphApiError` hierarchy:

- :class:`TransientGraphApiError` (``.transient`` is True) is retried with back-off:
  :class:`ThrottlingError` (codes 4, 17, 32, 613, 80000-80014 and HTTP 429),
  :class:`ServerError` (HTTP 5xx, codes 1 and 2, ``is_transient``), :class:`NetworkError`
  (time-outs, dropped connections) and :class:`AsyncReportError` (a report run that failed).
- :class:`PermanentGraphApiError` stops at once with a message that says what to fix:
  :class:`AuthError` (190, 102, 104), :class:`PermissionDeniedError` (10, 200-299),
  :class:`InvalidParameterError` (100), :class:`QueryTooLargeError` (ask for less or go
  async) and :class:`BudgetEditLimitError` (613/1487632: the ad set's budget was edited too
  often; Meta blocks budget edits for an hour, so retrying within seconds cannot help).

:class:`PayloadError` is not Meta's error but ours: a page that parsed as JSON but is not data
the pipeline can use (missing id, non-numeric spend, negative value, unknown currency).

No message produced here ever contains the access token: :func:`redact` scrubs
``access_token=...`` from any URL (Meta embeds it in ``paging.next``) and every known secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

_TOKEN_PARAM = re.compile(r"(?i)(access_token|appsecret_proof)=[^&\s\"'#]+")
_BEARER = re.compile(r"(?i)\b(Bearer|OAuth)\s+[A-Za-z0-9._\-|%]+")
REDACTED = "REDACTED"


def redact(text: object, secrets: Iterable[str | None] = ()) -> str:
    """``text`` as a string with every ``access_token=...`` and every secret replaced."""
    out = str(text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            out = out.replace(secret, REDACTED)
    out = _TOKEN_PARAM.sub(lambda m: f"{m.group(1)}={REDACTED}", out)
    return _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", out)


class MetaApiError(Exception):
    """Anything the Marketing API source raises."""


class ConfigError(MetaApiError, ValueError):
    """A missing or malformed ``META_*`` setting. The message names the variable."""


class PayloadError(MetaApiError, ValueError):
    """A response page that is not usable data. Names the page, row, field and value."""

    def __init__(
        self,
        message: str,
        *,
        page: str,
        row: int | None = None,
        field: str | None = None,
        value: object = None,
    ) -> None:
        super().__init__(message)
        self.page = page
        self.row = row
        self.field = field
        self.value = value


class GraphApiError(MetaApiError):
    """An error answered by the Graph API (or the transport on the way to it)."""

    transient: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        subcode: int | None = None,
        fbtrace_id: str | None = None,
        error_type: str | None = None,
        http_status: int | None = None,
        request: str | None = None,
        user_title: str | None = None,
        user_msg: str | None = None,
        retry_after: float | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.code = code
        self.subcode = subcode
        self.fbtrace_id = fbtrace_id
        self.error_type = error_type
        self.http_status = http_status
        self.request = request
        self.user_title = user_title
        self.user_msg = user_msg
        self.retry_after = retry_after
        self.hint = hint
        super().__init__(self._render())

    def _render(self) -> str:
        codes = ""
        if self.code is not None:
            codes = f"#{self.code}" + (f"/{self.subcode}" if self.subcode is not None else "")
        head = f"Graph API {codes} {type(self).__name__}" if codes else type(self).__name__
        parts = [f"{head}: {self.message}"]
        if self.user_msg and self.user_msg not in self.message:
            parts.append(f"({self.user_msg})")
        context = []
        if self.http_status is not None:
            context.append(f"HTTP {self.http_status}")
        if self.request:
            context.append(self.request)
        if self.fbtrace_id:
            context.append(f"fbtrace_id={self.fbtrace_id}")
        if context:
            parts.append(f"[{', '.join(context)}]")
        if self.hint:
            parts.append(f"- {self.hint}")
        return " ".join(parts)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, subcode={self.subcode!r}, "
            f"http_status={self.http_status!r}, fbtrace_id={self.fbtrace_id!r}, "
            f"message={self.message!r})"
        )


class TransientGraphApiError(GraphApiError):
    """Worth retrying after a pause."""

    transient = True


class ThrottlingError(TransientGraphApiError):
    """A rate limit: application, user, ad account, Insights or business-use-case."""


class ServerError(TransientGraphApiError):
    """Meta failed (HTTP 5xx, an HTML error page, codes 1/2 or ``is_transient``)."""


class NetworkError(TransientGraphApiError):
    """No answer: connection refused or dropped, or a time-out."""


class AsyncReportError(TransientGraphApiError):
    """An asynchronous report run failed, was skipped or could not be read."""


class PermanentGraphApiError(GraphApiError):
    """Retrying the same request cannot succeed; a person has to act."""


class AuthError(PermanentGraphApiError):
    """The access token is invalid, expired or revoked (code 190)."""


class PermissionDeniedError(PermanentGraphApiError):
    """The token lacks a permission on this object (codes 10, 200-299)."""


class InvalidParameterError(PermanentGraphApiError):
    """A parameter Meta rejects (code 100), e.g. an unknown field or a budget too low."""


class QueryTooLargeError(PermanentGraphApiError):
    """The request asks for too much at once: a smaller range, fewer rows or async."""


class BudgetEditLimitError(PermanentGraphApiError):
    """613/1487632: this ad set's budget changed too often; edits are blocked for an hour."""


# Rate-limit codes (Marketing API rate limiting, Insights error codes, business use case).
THROTTLING_CODES = frozenset({4, 17, 32, 613, *range(80000, 80015)})
BUDGET_EDIT_LIMIT = (613, 1487632)
TOO_LARGE = frozenset({(100, 1504018), (2, 1504018), (2, 1504038)})
ASYNC_FAILURES = frozenset({(2601, 1815107), (-2, 2490547)})
PERMANENT_INSIGHTS = frozenset({(2, 1504041), (2, 1504042)})

_HINTS = {
    AuthError: "the access token in META_ACCESS_TOKEN is invalid or expired; issue a new one",
    PermissionDeniedError: "the token's user lacks a permission (ads_read/ads_management) on "
    "this object",
    InvalidParameterError: "fix the request parameters; retrying will not help",
    QueryTooLargeError: "ask for a shorter date range or use an asynchronous report run",
    BudgetEditLimitError: "Meta allows 4 budget edits of one ad set per hour; try again in an hour",
}


def _as_int(value: Any) -> int | None:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def _too_large(code: int | None, subcode: int | None, message: str) -> bool:
    if (code, subcode) in TOO_LARGE:
        return True
    low = message.lower()
    return code == 1 and (
        "reduce the amount of data" in low or ("days" in low and "since and until" in low)
    )


def classify(
    http_status: int,
    error: Mapping[str, Any] | None,
    *,
    request: str | None = None,
    secrets: Iterable[str | None] = (),
    retry_after: float | None = None,
) -> GraphApiError:
    """The error class and fields for Meta's ``{"error": {...}}`` object (``None``: no body)."""
    secrets = tuple(secrets)
    err = dict(error or {})
    code = _as_int(err.get("code"))
    subcode = _as_int(err.get("error_subcode"))
    message = redact(err.get("message") or f"HTTP {http_status} without an error message", secrets)
    fields = {
        "code": code,
        "subcode": subcode,
        "fbtrace_id": err.get("fbtrace_id"),
        "error_type": err.get("type"),
        "http_status": http_status,
        "request": request,
        "user_title": err.get("error_user_title"),
        "user_msg": redact(err["error_user_msg"], secrets) if err.get("error_user_msg") else None,
    }
    cls: type[GraphApiError]
    if (code, subcode) == BUDGET_EDIT_LIMIT:
        return BudgetEditLimitError(
            message, retry_after=3600.0, hint=_HINTS[BudgetEditLimitError], **fields
        )
    if code in THROTTLING_CODES:
        cls = ThrottlingError
    elif code in (190, 102, 104):
        cls = AuthError
    elif code == 10 or (code is not None and 200 <= code <= 299):
        cls = PermissionDeniedError
    elif _too_large(code, subcode, message):
        cls = QueryTooLargeError
    elif (code, subcode) in ASYNC_FAILURES:
        cls = AsyncReportError
    elif (code, subcode) in PERMANENT_INSIGHTS or code == 100 or message.startswith("(#100)"):
        cls = InvalidParameterError
    elif err.get("is_transient") is True or code in (1, 2) or http_status >= 500:
        cls = ServerError
    elif http_status == 429:
        cls = ThrottlingError
    else:
        cls = PermanentGraphApiError
    return cls(message, retry_after=retry_after, hint=_HINTS.get(cls), **fields)


def classify_non_json(
    http_status: int, text: str, *, request: str | None = None, secrets: Iterable[str] = ()
) -> GraphApiError:
    """An answer that is not JSON, e.g. Meta's HTML "Sorry, something went wrong." page."""
    title = re.search(r"<h1[^>]*>(.*?)</h1>", text, re.S | re.I) or re.search(
        r"<title[^>]*>(.*?)</title>", text, re.S | re.I
    )
    what = " ".join(title.group(1).split()) if title else " ".join(text[:80].split())
    kind = "an HTML page" if "<html" in text.lower() else "a non-JSON body"
    message = redact(f"HTTP {http_status} returned {kind} instead of JSON: {what!r}", secrets)
    cls = ServerError if http_status >= 500 or http_status == 429 else PermanentGraphApiError
    return cls(message, http_status=http_status, request=request)
