"""The pools file is validated on load: errors name the field and the bad value."""

from __future__ import annotations

import pytest
import yaml

from budget_pipeline.config.loading import ConfigError
from budget_pipeline.config.pools import DEFAULT_POOLS_PATH, load_pools


def _write(tmp_path, mutate) -> str:
    config = yaml.safe_load(DEFAULT_POOLS_PATH.read_text())
    mutate(config)
    path = tmp_path / "pools.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


@pytest.mark.parametrize(
    ("mutate", "field", "shown"),
    [
        (lambda c: c["pools"][0].update(floor=-5), "pools[0].floor", "-5"),
        (lambda c: c["pools"][1].update(ceiling=float("inf")), "pools[1].ceiling", "inf"),
        (
            lambda c: c["settings"].update(min_adset_budget=float("nan")),
            "settings.min_adset_budget",
            "nan",
        ),
        (lambda c: c["settings"].update(learning_cap_pct=25), "settings.learning_cap_pct", "25"),
        (lambda c: c["pools"][2].update(mode="yolo"), "pools[2].mode", "yolo"),
        (lambda c: c["pools"][0]["weights"].update(roas=0.9), "pools[0].weights", "1.6"),
        (lambda c: c.update(currency="XYZ"), "currency", "XYZ"),
        (lambda c: c["pools"][1].update(floor=3000), "pools[1]", "3000"),
    ],
)
def test_invalid_values_are_named_with_their_field(tmp_path, mutate, field, shown):
    with pytest.raises(ConfigError) as err:
        load_pools(_write(tmp_path, mutate))
    message = str(err.value)
    assert field in message and shown in message


def test_a_nan_trigger_threshold_is_rejected_not_silently_never_firing(tmp_path):
    def add_trigger(c):
        c["pools"][0]["triggers"] = [
            {"name": "t", "action": "alert",
             "all": [{"metric": "roas", "op": "<", "value": float("nan")}]}
        ]  # fmt: skip

    with pytest.raises(ConfigError, match=r"pools\[0\]\.triggers\[0\]\.all\[0\]\.value"):
        load_pools(_write(tmp_path, add_trigger))


def test_unknown_keys_and_missing_files_are_errors(tmp_path):
    with pytest.raises(ConfigError, match="colour"):
        load_pools(_write(tmp_path, lambda c: c["pools"][0].update(colour="red")))
    with pytest.raises(ConfigError, match="not found"):
        load_pools(tmp_path / "nope.yaml")
    assert load_pools(DEFAULT_POOLS_PATH).by_name["prospecting"].tier == 2
