"""Load YAML into a pydantic model with errors a person can act on."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A config file that cannot be used. The message names the file, field and bad value."""


def _loc(parts: tuple) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def format_validation_error(exc: ValidationError, source: str) -> str:
    lines = [f"{source}: {exc.error_count()} invalid value(s)"]
    for err in exc.errors():
        where = _loc(tuple(p for p in err["loc"] if p not in ("function-after",)))
        got = err.get("input")
        shown = repr(got) if not isinstance(got, dict) else "{...}"
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"  - {where}: {msg} (got {shown})")
    return "\n".join(lines)


def load_yaml_model(model: type[M], path: str | Path, *, what: str) -> M:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {path}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path} must be a YAML mapping, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, f"{what} {path}")) from None
