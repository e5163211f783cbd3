"""The validated scenario, kept so that a big scenario file is parsed once, not in every step
and every launched run process.

A 10,000-ad-set scenario is a 2 MB YAML file: parsing it takes seconds (the YAML constructor is
Python), and the pipeline used to do it twice per run and again when each run process imported
the code location. Now:

- in a process, the validated :class:`~budget_pipeline.sources.simulated.scenario.Scenario` is
  kept per file (its resolved path and a SHA-256 of its bytes: milliseconds for a 2 MB file,
  and unlike a modification time it cannot miss an edit made within the same clock tick), so
  every step of a run shares one load;
- across processes, the validated scenario is written as JSON to the cache folder
  (``$BUDGET_PIPELINE_CACHE_DIR``, else ``$XDG_CACHE_HOME/budget_pipeline`` or
  ``~/.cache/budget_pipeline``), under a name derived from that same key. A new process reads
  the JSON (C-speed) and validates it again with the same model, so a stale or damaged cache
  can never hand out an invalid scenario: it is ignored and the YAML is read as before;
- :func:`scenario_header` gives the first day, length and timezone that the partitions need at
  import from the cache file alone, without building the model.

Only a scenario that validated is cached; a broken file always goes through the YAML and its
:class:`~budget_pipeline.config.loading.ConfigError`. The cache is an optimisation: a folder
that cannot be written is skipped silently.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections import OrderedDict
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

if TYPE_CHECKING:
    from budget_pipeline.sources.simulated.scenario import Scenario

CACHE_ENV = "BUDGET_PIPELINE_CACHE_DIR"
# Bump when the cached JSON's layout changes (a changed model is caught by re-validation).
FORMAT = 1
_MEMO_SIZE = 4
Key = tuple[str, str]  # resolved path, SHA-256 of the file's bytes
_memo: OrderedDict[Key, Scenario] = OrderedDict()


def cache_dir() -> Path:
    explicit = os.environ.get(CACHE_ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base).expanduser() / "budget_pipeline"


def file_key(path: str | Path) -> Key | None:
    """(resolved path, SHA-256 of its bytes) of a readable regular file; None otherwise."""
    try:
        resolved = Path(path).resolve()
        if not resolved.is_file():
            return None
        digest = hashlib.sha256(resolved.read_bytes()).hexdigest()
    except OSError:
        return None
    return str(resolved), digest


def _cache_file(key: Key) -> Path:
    owner = hashlib.sha256(key[0].encode()).hexdigest()[:16]
    version = hashlib.sha256(f"{FORMAT}|{key[1]}".encode()).hexdigest()[:24]
    return cache_dir() / "scenarios" / f"{owner}-{version}.json"


def _read(key: Key) -> dict | None:
    try:
        data = json.loads(_cache_file(key).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("key") != list(key) or "scenario" not in data:
        return None
    return data


def _write(key: Key, scenario: Scenario) -> None:
    target = _cache_file(key)
    payload = {
        "key": list(key),
        "start": scenario.start.isoformat(),
        "days": scenario.days,
        "timezone": scenario.timezone,
        # only what the file set: a default the model changes later applies on reading, as it
        # would to the YAML
        "scenario": scenario.model_dump(mode="json", exclude_unset=True),
    }
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        for old in target.parent.glob(f"{target.name.split('-')[0]}-*.json"):
            old.unlink(missing_ok=True)  # earlier versions of the same file
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, separators=(",", ":"))
        os.replace(tmp, target)  # atomic: a concurrent reader sees the old file or the new
    except OSError:
        return


def _remember(key: Key, scenario: Scenario) -> Scenario:
    _memo[key] = scenario
    _memo.move_to_end(key)
    while len(_memo) > _MEMO_SIZE:
        _memo.popitem(last=False)
    return scenario


def cached_load(path: str | Path, parse: Callable[[Path], Scenario]) -> Scenario:
    """The validated scenario of ``path``: from this process's memory, else the cache folder
    (validated again), else ``parse(path)`` (the YAML), which is then cached."""
    from budget_pipeline.sources.simulated.scenario import Scenario

    key = file_key(path)
    if key is None:
        return parse(Path(path))  # missing, a folder...: the parser's error names it
    if key in _memo:
        _memo.move_to_end(key)
        return _memo[key]
    data = _read(key)
    if data is not None:
        try:
            return _remember(key, Scenario.model_validate(data["scenario"]))
        except ValidationError:
            pass  # a cache written by another version of the model: parse the file again
    scenario = parse(Path(path))
    if file_key(path) == key:  # unchanged while it was read: safe to cache under this key
        _write(key, scenario)
        _remember(key, scenario)
    return scenario


def scenario_header(
    path: str | Path,
    parse: Callable[[Path], Scenario],
    *,
    quick: Callable[[Path], tuple[date, int, str] | None] | None = None,
) -> tuple[date, int, str]:
    """(first day, days of history, timezone) of a valid scenario, from the cache when it has
    the file as it is now (no model built), else from ``quick(path)`` if it tells, else by
    loading it (and so validating it)."""
    key = file_key(path)
    if key is not None and key not in _memo:
        data = _read(key)
        if data is not None:
            try:
                return date.fromisoformat(data["start"]), int(data["days"]), str(data["timezone"])
            except (KeyError, TypeError, ValueError):
                pass
        header = quick(Path(path)) if quick is not None else None
        if header is not None:
            return header
    scenario = cached_load(path, parse)
    return scenario.start, scenario.days, scenario.timezone


def clear_memory() -> None:
    """Forget the scenarios kept in this process (the cache folder stays)."""
    _memo.clear()
