"""A real HTTP server for the Graph API double: stdlib ``ThreadingHTTPServer`` on loopback.

Tests start it with :func:`serve_double` (port 0 picks a free port)::

    with serve_double(SimulatedAccount(load_scenario(DEFAULT_SCENARIO_PATH))) as double:
        source = MetaApiSource.from_env(double.env())
        double.faults.push({"status": 400, "code": 17, "subcode": 2446079})
        ...

and people with ``python -m budget_pipeline.sources.graph_double --port 8765``.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

from budget_pipeline.sources.graph_double.app import FaultQueue, GraphDouble

logger = logging.getLogger(__name__)

DEFAULT_TOKEN = "double-token"
DEFAULT_API_VERSION = "v25.0"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _DoubleServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm
        # and the client's delayed ACK add ~40 ms to every answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header tells the simulated account's clock, as Meta's tells real time:
        the pipeline takes "now" from the server, so it lives in the double's time."""
        if timestamp is not None:
            return super().date_time_string(timestamp)
        account = self.server.double.account
        local = account.now.replace(tzinfo=ZoneInfo(account.timezone))
        return email.utils.format_datetime(local.astimezone(UTC), usegmt=True)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        host = self.headers.get("Host") or f"{self.server.server_address[0]}:{self.server.port}"
        reply = self.server.double.handle(
            self.command, self.path, body, dict(self.headers.items()), base_url=f"http://{host}"
        )
        if reply.delay:
            time.sleep(reply.delay)
        if reply.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError:  # the client gave up (e.g. its time-out fired first)
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        # The request line holds the path only (the double's own next URLs carry the token in
        # the query, and the client strips it), but stay quiet by default.
        return


class _DoubleServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], double: GraphDouble) -> None:
        super().__init__(address, _Handler)
        self.double = double

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("graph double: connection error from %s", client_address, exc_info=True)


@dataclass
class DoubleHandle:
    """A running double: its base URL, fault queue, request log and simulated account."""

    url: str
    double: GraphDouble
    token: str
    api_version: str
    server: _DoubleServer

    @property
    def faults(self) -> FaultQueue:
        return self.double.faults

    @property
    def requests(self) -> list[dict[str, Any]]:
        """method, path, params (``access_token`` redacted) and status of every request."""
        return self.double.requests

    @property
    def account(self) -> Any:
        return self.double.account

    def set_usage(self, pct: float | None, *, regain_minutes: float = 0.0) -> None:
        self.double.set_usage(pct, regain_minutes=regain_minutes)

    def env(self) -> dict[str, str]:
        """``META_*`` variables that point :meth:`MetaApiSource.from_env` at this double."""
        return {
            "META_ACCESS_TOKEN": self.token,
            "META_AD_ACCOUNT_ID": self.double.account.account_id,
            "META_GRAPH_URL": self.url,
            "META_API_VERSION": self.api_version,
        }

    def __repr__(self) -> str:
        return f"DoubleHandle(url={self.url!r}, account_id={self.double.account.account_id!r})"


@contextlib.contextmanager
def serve_double(
    account: Any,
    *,
    token: str = DEFAULT_TOKEN,
    host: str = "127.0.0.1",
    port: int = 0,
    api_version: str = DEFAULT_API_VERSION,
    **double_options: Any,
) -> Iterator[DoubleHandle]:
    """Serve ``account`` over HTTP on ``host:port`` (0: a free port) until the block ends."""
    double = GraphDouble(account, token=token, **double_options)
    server = _DoubleServer((host, port), double)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    handle = DoubleHandle(
        url=f"http://{host}:{server.port}",
        double=double,
        token=token,
        api_version=api_version,
        server=server,
    )
    logger.debug("graph double serving %s at %s", account.account_id, handle.url)
    try:
        yield handle
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
