"""``python -m budget_pipeline.sources.graph_double``: serve a simulated account over HTTP.

Options: ``--port`` (default 8765), ``--host`` (default 127.0.0.1), ``--scenario`` (a scenario
YAML, default the embedded one) and ``--token`` (default ``$META_ACCESS_TOKEN`` or
``double-token``). Stop with Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import threading
from pathlib import Path

from budget_pipeline.sources.graph_double.server import DEFAULT_TOKEN, serve_double
from budget_pipeline.sources.simulated import (
    DEFAULT_SCENARIO_PATH,
    SimulatedAccount,
    load_scenario,
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m budget_pipeline.sources.graph_double",
        description="Serve the simulated ad account through a Graph API double.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--scenario", type=Path, default=DEFAULT_SCENARIO_PATH)
    parser.add_argument(
        "--token",
        default=os.environ.get("META_ACCESS_TOKEN") or DEFAULT_TOKEN,
        help="the access token the double accepts (never printed)",
    )
    args = parser.parse_args(argv)
    account = SimulatedAccount(load_scenario(args.scenario))
    with serve_double(account, token=args.token, host=args.host, port=args.port) as double:
        print(
            f"Graph API double for {account.account_id} ({account.currency}) at {double.url}",
            flush=True,
        )
        print(f"  export META_GRAPH_URL={double.url}")
        print(f"  export META_AD_ACCOUNT_ID={account.account_id}")
        print(f"  export META_API_VERSION={double.api_version}")
        print("  export META_ACCESS_TOKEN=<the token given with --token>", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopped")


if __name__ == "__main__":
    main()
