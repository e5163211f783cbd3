"""An accounts file with two simulated ad accounts, for the tests of many accounts."""

from __future__ import annotations

from pathlib import Path

import yaml

from budget_pipeline.config.pools import DEFAULT_POOLS_PATH

# the default scenario's account (history Sep 1 .. Oct 30, Europe/Berlin) and a second one
# (examples/accounts/shop_at.yaml: its own ids, seed and history Sep 8 .. Nov 6)
SECOND_SCENARIO = Path(__file__).resolve().parents[1] / "examples" / "accounts" / "shop_at.yaml"
ACCOUNT_IDS = {"shop_de": "act_1029384756", "shop_at": "act_2048596071"}
# shop_at's runs carry its warehouse volume for the K8sRunLauncher (deploy/README.md); every
# other launcher ignores the tag
K8S_CONFIG = {
    "pod_spec_config": {
        "volumes": [
            {"name": "warehouse", "persistent_volume_claim": {"claim_name": "warehouse-shop-at"}}
        ]
    },
    "container_config": {
        "volume_mounts": [{"name": "warehouse", "mount_path": "/var/lib/budget_pipeline/warehouse"}]
    },
}


def write_accounts(folder: Path) -> Path:
    """accounts.yaml in ``folder``: shop_de and shop_at, the default pools file each, their
    warehouses under ``folder/data``."""
    path = folder / "accounts.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "accounts": [
                    {"name": "shop_de", "pools": str(DEFAULT_POOLS_PATH)},
                    {
                        "name": "shop_at",
                        "pools": str(DEFAULT_POOLS_PATH),
                        "scenario": str(SECOND_SCENARIO),
                        "run_tags": {"dagster-k8s/config": K8S_CONFIG},
                    },
                ]
            },
            sort_keys=False,
        )
    )
    return path
