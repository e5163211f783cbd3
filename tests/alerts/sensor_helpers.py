"""Tick an alert sensor the way the daemon does, and read what it left in its cursor."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import yaml

from budget_pipeline.defs.resources import PoolsResource

# The default pools with prospecting on the threshold policy: its plan on the default account
# pauses one ad set, which is what the pause alert needs to see.
PAUSE_POOLS = Path(__file__).parent.parent / "fixtures" / "pools_pause.yaml"


def tick(sensor, instance, cursor=None, pools_path: Path = PAUSE_POOLS):
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"pools": PoolsResource(path=str(pools_path))}
    )
    result = sensor(context)
    assert isinstance(result, dg.SensorResult) and not result.run_requests
    return result


def state(result) -> dict:
    return json.loads(result.cursor)


def pools_with_alerts(tmp_path: Path, **alerts) -> Path:
    config = yaml.safe_load(PAUSE_POOLS.read_text())
    config["alerts"] = alerts
    path = tmp_path / "pools_alerts.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def newest_plan(instance) -> dict:
    record = instance.fetch_materializations(dg.AssetKey("rebalance_plan"), limit=1).records[0]
    meta = {k: v.value for k, v in record.asset_materialization.metadata.items()}
    return {"run_id": record.run_id, "storage_id": record.storage_id, **meta}
