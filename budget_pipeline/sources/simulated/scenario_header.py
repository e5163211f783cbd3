"""The three fields the partitions need (first day, days of history, timezone), read from a big
scenario without building the rest of it.

Importing the code location needs only these (see ``defs/partitions.py``), and a launched run
imports it again. A scenario of 10,000 ad sets is 2 MB of YAML: PyYAML builds its 300,000
nodes in about 2 s and the model validates them in 0.2 s more, twice the 2 s a launched run may
spend importing. The C parser alone walks the same file's events in about 0.15 s, so for a file
of at least :data:`QUICK_HEADER_BYTES` the header is picked from the top-level events and
validated by :class:`ScenarioHeader` (the same field types the scenario itself uses). The rest
of the file is validated, with the usual error naming the field, by the first step that opens
the account (and by ``budget-pipeline check``/``run`` before anything runs). Smaller files
are loaded whole at import, as before, so a mistake in them fails the code location at once.

The walk stops at the last of the three keys (they open every bundled scenario). Anything
unusual about them — an alias or an explicit tag as the value, a key given twice before that,
a document that is not a mapping, YAML the parser refuses before that — gives None, and the
caller loads the file whole (whose error then names the problem).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

# Files at least this big (about 300 ad sets) are not loaded whole for their header: loaded
# whole, 1,000 ad sets (220 KB) took 0.27 s of a launched run's import on two cores, and kept
# the bench's cold import at 1,000 ad sets above 2 s; 64 KB takes about 0.1 s.
QUICK_HEADER_BYTES = 64 << 10
HEADER_KEYS = ("start", "days", "timezone")
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA timezone {value!r}") from None
    return value


Days = Annotated[int, Field(ge=1, le=3650)]
Timezone = Annotated[str, AfterValidator(_timezone)]


class ScenarioHeader(BaseModel):
    """The partitions' view of a scenario (the scenario declares the same fields alike)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    start: date  # first simulated day, account-local
    days: Days
    timezone: Timezone


def _top_level_scalars(text: str, wanted: tuple[str, ...]) -> dict[str, Any] | None:
    """The values of ``wanted`` keys of the document's top-level mapping, constructed as
    ``yaml.safe_load`` would; None when that cannot be told from the events alone."""
    loader = _SafeLoader("")
    found: dict[str, Any] = {}
    depth, documents = 0, 0
    expect_key, key = True, None
    try:
        for event in yaml.parse(text, Loader=_SafeLoader):
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    return None
            elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                if depth == 0 and not isinstance(event, yaml.MappingStartEvent):
                    return None  # the document is not a mapping
                if depth == 1 and expect_key:
                    return None  # a complex key
                depth += 1
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                depth -= 1
                if depth == 1:
                    expect_key, key = True, None  # a collection was a top-level value
            elif depth == 1 and isinstance(event, yaml.ScalarEvent | yaml.AliasEvent):
                if expect_key:
                    if not isinstance(event, yaml.ScalarEvent):
                        return None
                    key = event.value
                    if key in found:
                        return None  # given twice: the full load names both lines
                    expect_key = False
                    continue
                if key in wanted:
                    if isinstance(event, yaml.AliasEvent) or event.tag not in (None, "!"):
                        return None
                    tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
                    node = yaml.ScalarNode(tag, event.value, style=event.style)
                    found[key] = loader.construct_object(node, deep=True)
                    if len(found) == len(wanted):
                        break  # the rest of the file is the full load's to judge
                expect_key, key = True, None
    except yaml.YAMLError:
        return None
    finally:
        loader.dispose()
    return found


def quick_header(path: str | Path) -> tuple[date, int, str] | None:
    """(first day, days of history, timezone) of a scenario file of at least
    :data:`QUICK_HEADER_BYTES`, from its top-level events; None for a smaller file or anything
    the full load must judge."""
    path = Path(path)
    try:
        if path.stat().st_size < QUICK_HEADER_BYTES:
            return None
        text = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return None
    values = _top_level_scalars(text, HEADER_KEYS)
    if values is None:
        return None
    try:
        header = ScenarioHeader.model_validate(values)
    except ValidationError:
        return None
    return header.start, header.days, header.timezone
