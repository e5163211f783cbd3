"""The real Dagster UI in headless Chromium, as a marketer uses it after the quick start.

``dagster dev`` serves this code location on a free loopback port, with a throwaway
DAGSTER_HOME and warehouse (holding the simulated account's history up to the day before its
newest). Through the browser: open the asset graph, launch ``budget_cycle_job`` for the latest
partition, wait for the run's success, open ``rebalance_plan`` and find a pool's floor in its
``per_pool`` table, an ad set's name in its ``moves_table`` and the plan's chart.

Chromium is Debian's (``/usr/bin/chromium``, installed by ``.ci/run``), driven by playwright's
Python package: playwright's own browser download cannot work here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster_helpers import ALL_KEYS, run_cycle

from budget_pipeline.cli import _stop_group
from budget_pipeline.config.pools import DEFAULT_POOLS_PATH, load_pools
from budget_pipeline.money import format_money

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
ROOT = Path(__file__).resolve().parents[2]
SERVE_SECONDS = 90
RUN_SECONDS = 90

playwright = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]'")
if not CHROMIUM.exists():
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
    pytest.skip(f"{CHROMIUM} missing: apt-get install chromium", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serving(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/server_info", timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False


@pytest.fixture
def ui(tmp_path):
    """``dagster dev`` in its own process group over a seeded warehouse: (url, warehouse)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(ROOT / "dagster.yaml", home / "dagster.yaml")
    # Dagster's "Join the community" dialog, seen once already (the file its Skip button
    # writes: dagster._core.nux): it opened at any moment over the launch dialog, and a
    # locator handler dismissing it made a click wait past 30 s once on a loaded machine
    (home / ".nux").mkdir()
    (home / ".nux" / "nux.yaml").write_text("seen: 1\n")
    db_path = tmp_path / "warehouse.duckdb"
    run_cycle(dg.DagsterInstance.ephemeral(), db_path, ALL_KEYS[:-1])  # history but the newest day
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BUDGET_PIPELINE", "META_"))}
    env |= {"DAGSTER_HOME": str(home), "BUDGET_PIPELINE_DB": str(db_path)}
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "dagster_dev.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "dagster", "dev", "-m", "budget_pipeline.definitions",
         "-h", "127.0.0.1", "-p", str(port)],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: stopped as a whole below
    )  # fmt: skip
    try:
        deadline = time.monotonic() + SERVE_SECONDS
        while not _serving(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    "dagster dev did not serve: "
                    + (tmp_path / "dagster_dev.log").read_text()[-3000:]
                )
            time.sleep(0.5)
        yield url, db_path
    finally:
        _stop_group(proc)
        log.close()


def _shows_community_dialog(url: str) -> bool:
    """The UI's own question (GraphQL ``shouldShowNux``) whether it opens the dialog."""
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": "{ shouldShowNux }"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.load(reply)["data"]["shouldShowNux"]


def _moved_adset_names(db_path: Path) -> set[str]:
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        rows = con.execute(
            "SELECT DISTINCT e.name FROM rebalance_plans AS p JOIN ad_entities AS e "
            "USING (entity_id) WHERE e.entity_type = 'adset' AND (p.delta != 0 OR p.pause) "
            "AND p.plan_id = (SELECT plan_id FROM rebalance_plans ORDER BY created_at DESC LIMIT 1)"
        ).fetchall()
    finally:
        con.close()
    return {name for (name,) in rows}


def test_a_marketer_launches_the_latest_cycle_and_reads_the_plan(ui):
    from playwright.sync_api import expect, sync_playwright

    url, db_path = ui
    assert _shows_community_dialog(url) is False  # nothing opens over the dialogs below
    started = time.monotonic()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(60_000)  # a loaded 2-core machine

        # 1. The asset graph: every group of the code location, monitoring included.
        page.goto(f"{url}/asset-groups")
        for group in ("extraction", "warehouse", "decisions", "execution", "monitoring"):
            expect(page.get_by_text(group, exact=True).first).to_be_visible()

        # 2. Launch the cycle for the latest partition.
        page.goto(f"{url}/locations/budget_pipeline.definitions/jobs/budget_cycle_job")
        page.get_by_role("button", name="Materialize all…").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_role("button", name="Latest", exact=True).click()
        dialog.get_by_role("button", name="Launch 1 run").click()
        view = page.get_by_role("link", name="View", exact=True)
        expect(view).to_be_visible()
        href = view.get_attribute("href") or ""
        match = re.search(r"/runs/([0-9a-f-]{36})", href)
        assert match, f"no run link in the launch toast: {href!r}"
        run_id = match.group(1)

        # 3. Wait for its success on the run's page.
        page.goto(f"{url}/runs/{run_id}")
        expect(page.get_by_text("Success", exact=True).first).to_be_visible(
            timeout=RUN_SECONDS * 1000
        )

        # 4. rebalance_plan: a pool's floor in per_pool, an ad set's name in moves_table.
        page.goto(f"{url}/assets/rebalance_plan")
        floor = format_money(load_pools(DEFAULT_POOLS_PATH).floor_minor("retargeting"), "EUR")
        per_pool = page.get_by_role("row").filter(has_text="per_pool")
        expect(per_pool).to_contain_text("floor")
        expect(per_pool.get_by_role("row").filter(has_text="retargeting")).to_contain_text(floor)
        names = _moved_adset_names(db_path)
        assert names, "the plan of the latest partition moves ad sets"
        page.get_by_role("row").filter(has_text="moves_table").get_by_text(
            "[Show Markdown]"
        ).click()
        shown = page.get_by_role("dialog")
        expect(shown).to_contain_text(sorted(names)[0])
        expect(shown).to_contain_text(" EUR")
        page.keyboard.press("Escape")

        # The plan's chart renders inline (a data: URI image, not a broken one).
        page.get_by_role("row").filter(has_text=re.compile(r"^chart")).get_by_text(
            "[Show Markdown]"
        ).click()
        image = page.get_by_role("dialog").locator("img[src^='data:image/png;base64,']")
        expect(image).to_be_visible()
        assert image.evaluate("img => img.naturalWidth") > 300
        browser.close()
    elapsed = time.monotonic() - started
    print(f"browser session: {elapsed:.1f} s")
