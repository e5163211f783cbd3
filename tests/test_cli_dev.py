"""`budget-pipeline dev` serves the UI and, when stopped, leaves nothing running."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

CLI = shutil.which("budget-pipeline") or str(Path(sys.executable).with_name("budget-pipeline"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc's parent links)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT])
def test_stopping_dev_stops_the_ui_and_frees_its_port(tmp_path, how):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BUDGET_PIPELINE", "META_"))}
    env.pop("DAGSTER_HOME", None)
    env["BUDGET_PIPELINE_DB"] = str(tmp_path / "w.duckdb")
    proc = subprocess.Popen(
        [CLI, "dev", "--port", str(port)], cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not _listening(port):
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "the UI never came up"
            time.sleep(0.5)
        children = _descendants(proc.pid)
        assert len(children) >= 2, "dagster dev and its webserver are running"
        proc.send_signal(how)
        assert proc.wait(timeout=60) == 128 + int(how)
        deadline = time.monotonic() + 30
        while _listening(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _listening(port), "the port is still bound after dev stopped"
        time.sleep(1)
        left = [p for p in children if Path(f"/proc/{p}").exists()]
        assert left == [], f"processes left running: {left}"
    finally:  # whatever failed, leave nothing running
        for pid in _descendants(proc.pid) | {proc.pid}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
