"""The warehouse resource refuses a BUDGET_PIPELINE_DB that is no DuckDB database by name,
instead of calling it "in use by another process", and creates nothing."""

from __future__ import annotations

import pytest

from budget_pipeline.config.loading import ConfigError
from budget_pipeline.defs.resources import Warehouse


@pytest.mark.parametrize("kind", ["yaml", "directory", "corrupt"])
def test_a_path_that_is_no_duckdb_database_is_named_not_called_locked(tmp_path, kind):
    path = {
        "yaml": tmp_path / "pools.yaml",
        "directory": tmp_path / "folder",
        "corrupt": tmp_path / "w.duckdb",
    }[kind]
    if kind == "yaml":
        path.write_text("currency: EUR\npools: []\n")
    elif kind == "directory":
        path.mkdir()
    else:  # a DuckDB header, then garbage
        path.write_bytes(b"\x00" * 8 + b"DUCK" + b"\xff" * 4096)
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(ConfigError) as err, Warehouse(database=str(path)).connect():
        pass
    message = str(err.value)
    assert message.startswith(f"BUDGET_PIPELINE_DB={path}: ")
    assert "in use by another process" not in message
    assert sorted(tmp_path.rglob("*")) == before
