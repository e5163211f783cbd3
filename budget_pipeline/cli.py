"""The ``budget-pipeline`` command."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Move Meta ads budget between campaigns, safely.")
