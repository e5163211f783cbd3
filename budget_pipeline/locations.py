"""Dagster code locations, one per ad account of the accounts file (``BUDGET_PIPELINE_ACCOUNTS``).

``budget_pipeline.locations:<name>`` is the account called ``<name>``: a workspace lists one
entry per account (``budget-pipeline dev`` writes it: :func:`workspace_yaml`), and
``dagster api grpc -m budget_pipeline.locations -a <name>`` serves one account (one user code
deployment per account on Kubernetes, deploy/README.md). Each location is built when Dagster
asks for it, so a process serving one account builds only that one.
"""

from __future__ import annotations

from pathlib import Path

import yaml


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    from budget_pipeline.defs.accounts import configured_accounts, location

    accounts = configured_accounts()
    if name not in accounts:
        raise AttributeError(
            f"no account {name!r} in the accounts file; known: {', '.join(accounts)}"
        )
    return location(name)


def __dir__() -> list[str]:
    """The module's names and every account's (Dagster lists them when a name is unknown)."""
    from budget_pipeline.defs.accounts import configured_accounts

    return sorted({*globals(), *configured_accounts()})


def workspace_yaml(names: list[str], working_directory: Path) -> str:
    """A Dagster workspace with one code location per account."""
    entries = [
        {
            "python_module": {
                "module_name": __name__,
                "attribute": name,
                "location_name": name,
                "working_directory": str(working_directory),
            }
        }
        for name in names
    ]
    header = (
        "# One code location per ad account of the accounts file (budget-pipeline dev writes\n"
        "# this file; the accounts file is BUDGET_PIPELINE_ACCOUNTS).\n"
    )
    return header + yaml.safe_dump({"load_from": entries}, sort_keys=False)
