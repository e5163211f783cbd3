"""A Dagster logger for the command line: the full log to a file, a short line per stage on
the terminal (the UI's runs keep Dagster's own console logger: this one is only used when a
run's config names it, as ``budget-pipeline run`` does)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import dagster as dg

_SHOWN = {"STEP_SUCCESS", "STEP_FAILURE", "ASSET_CHECK_EVALUATION", "RUN_FAILURE"}


def _error_text(event) -> str | None:
    """The step's own error (inside Dagster's wrappers), first line, as ``Class: message``
    (Dagster's message only says that the step failed)."""
    error = getattr(getattr(event, "event_specific_data", None), "error", None)
    while (
        error is not None
        and str(getattr(error, "cls_name", "")).startswith("Dagster")
        and getattr(error, "cause", None) is not None
    ):
        error = error.cause
    text = (getattr(error, "message", None) or "").strip()
    if not text:
        return None
    first = text.splitlines()[0]
    name = getattr(error, "cls_name", None)
    if name and ": " in first:
        first = f"{name}: {first.split(': ', 1)[1]}"
    return first


class _ProgressHandler(logging.Handler):
    """One line per finished step, failed check or failure; the waits on the DuckDB pool."""

    def __init__(self, stream) -> None:
        super().__init__(logging.DEBUG)
        self.stream = stream
        self._waiting_said = False

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        kind = getattr(event, "event_type_value", None)
        step = meta.get("step_key") or ""
        message = str(meta.get("orig_message") or record.getMessage())
        line = None
        if kind == "STEP_SUCCESS":
            line = f"  ok    {step} ({message.rsplit(' in ', 1)[-1].rstrip('.')})"
        elif kind == "STEP_FAILURE":
            line = f"  FAIL  {step}: {(_error_text(event) or message).splitlines()[0][:300]}"
        elif kind == "ASSET_CHECK_EVALUATION" and "failed" in message:
            line = f"  FAIL  {message}"
        elif kind == "RUN_FAILURE":
            line = f"  run failed: {message.splitlines()[0][:300]}"
        elif "blocked by limit for pool" in message and not self._waiting_said:
            self._waiting_said = True
            line = (
                f"  wait  {step}: the warehouse (pool duckdb_write) is held by another run; "
                "waiting (Ctrl-C stops)"
            )
        if line:
            print(line, file=self.stream, flush=True)


@dg.logger(
    config_schema={"log_file": str, "progress": dg.Field(bool, default_value=True)},
    description="budget-pipeline's CLI: Dagster's full log to a file, one line per stage on stdout.",
)
def cli_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    config = init_context.logger_config
    logger = logging.getLogger(f"budget_pipeline.cli.{init_context.run_id}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.handlers.clear()
    path = Path(config["log_file"])
    path.parent.mkdir(parents=True, exist_ok=True)
    file_handler = logging.FileHandler(path, encoding="utf-8")
    file_handler.setLevel(logging.DEBUG)
    file_handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s " + init_context.run_id[:8] + " %(message)s")
    )
    logger.addHandler(file_handler)
    if config["progress"]:
        logger.addHandler(_ProgressHandler(sys.stdout))
    return logger


def cli_run_config(log_file: Path, *, verbose: bool) -> dict:
    """Run config selecting the CLI logger (and Dagster's console logger with ``verbose``)."""
    loggers: dict = {"cli": {"config": {"log_file": str(log_file)}}}
    if verbose:
        loggers["console"] = {"config": {"log_level": "DEBUG"}}
    return {"loggers": loggers}
