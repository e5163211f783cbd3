"""The Helm values give the instance the settings deploy/dagster.yaml gives it (and that
tests/deploy runs the pipeline on), and the image they point at can be built from this repo."""

from __future__ import annotations

import importlib.util
import json
import tomllib
from importlib.metadata import version
from pathlib import Path

import yaml

from budget_pipeline.config.accounts import load_accounts

ROOT = Path(__file__).resolve().parents[2]
INSTANCE = yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())
VALUES = yaml.safe_load((ROOT / "deploy" / "helm" / "values.yaml").read_text())


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def test_run_limits_pools_and_monitoring_match_the_tested_instance_config():
    concurrency = VALUES["concurrency"]
    assert concurrency["enabled"] is True
    runs = INSTANCE["concurrency"]["runs"]
    assert concurrency["runs"]["maxConcurrentRuns"] == runs["max_concurrent_runs"]
    assert concurrency["runs"]["tagConcurrencyLimits"] == runs["tag_concurrency_limits"]
    pools = {_snake(k): v for k, v in concurrency["pools"].items()}
    assert pools == INSTANCE["concurrency"]["pools"]

    daemon = VALUES["dagsterDaemon"]
    monitoring = {_snake(k): v for k, v in daemon["runMonitoring"].items()}
    # the chart has no max_runtime_seconds: on Kubernetes the launcher checks each run's pod
    expected = {k: v for k, v in INSTANCE["run_monitoring"].items() if k != "max_runtime_seconds"}
    assert monitoring == expected

    coordinator = daemon["runCoordinator"]
    assert coordinator["enabled"] and coordinator["type"] == "QueuedRunCoordinator"
    assert INSTANCE["run_coordinator"]["class"] == "QueuedRunCoordinator"
    # Every value here empty: the chart renders no run_coordinator `config:` (which would
    # carry max_concurrent_runs and clash with `concurrency:` when Dagster loads it).
    assert not any(coordinator["config"]["queuedRunCoordinator"].values())


def test_storage_is_the_same_postgres_with_the_password_from_a_secret():
    pg = VALUES["postgresql"]
    db = INSTANCE["storage"]["postgres"]["postgres_db"]
    assert pg["postgresqlScheme"] == db["scheme"] == "postgresql+psycopg2"
    assert db["password"] == {"env": "DAGSTER_PG_PASSWORD"}  # the variable the chart sets
    assert all(isinstance(v, dict) and set(v) == {"env"} for k, v in db.items() if k != "scheme")
    assert VALUES["generatePostgresqlPasswordSecret"] is False
    assert pg["postgresqlPassword"] == ""
    assert VALUES["global"]["postgresqlSecretName"]


def test_runs_get_their_own_pod_from_the_projects_image():
    assert VALUES["runLauncher"]["type"] == "K8sRunLauncher"
    for deployment in VALUES["dagster-user-deployments"]["deployments"]:
        assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True
        flag, module, *_rest = deployment["dagsterApiGrpcArgs"]
        assert flag == "-m" and importlib.util.find_spec(module) is not None

    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert 'pip install ".[deploy]"' in dockerfile
    copied = {
        src
        for line in dockerfile.splitlines()
        if line.startswith("COPY ")
        for src in line.split()[1:-1]
    }
    assert copied == {"pyproject.toml", "README.md", "budget_pipeline", "sql"}
    assert all((ROOT / src).exists() for src in copied)
    # the [deploy] extra pins the integrations released with the pinned dagster
    # (dagster 1.X.Y ships with integrations 0.(X+16).Y)
    major, minor, patch = version("dagster").split(".")
    pin = f"==0.{int(minor) + 16}.{patch}"
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert sorted(extras["optional-dependencies"]["deploy"]) == [
        f"dagster-k8s{pin}",
        f"dagster-postgres{pin}",
    ]
    assert f"dagster-postgres{pin}" in extras["optional-dependencies"]["dev"]
    assert f"dagster=={major}.{minor}.{patch}" in extras["dependencies"]


def test_one_code_location_per_account_each_run_on_its_own_warehouse_volume():
    """deploy/accounts.yaml is a valid accounts file (as the code servers load it, with a
    token: Marketing API accounts); helm/values.yaml serves each of its accounts as a location;
    each account's runs mount its own claim where its warehouse is."""
    accounts = load_accounts(ROOT / "deploy" / "accounts.yaml", env={"META_ACCESS_TOKEN": "t"})
    deployments = VALUES["dagster-user-deployments"]["deployments"]
    served = {}
    for deployment in deployments:
        assert deployment["dagsterApiGrpcArgs"][:2] == ["-m", "budget_pipeline.locations"]
        flag, name = deployment["dagsterApiGrpcArgs"][2:]
        assert flag == "-a" and deployment["name"] == name.replace("_", "-")
        assert deployment["env"]["BUDGET_PIPELINE_ACCOUNTS"] == "/etc/budget_pipeline/accounts.yaml"
        assert deployment["image"] == deployments[0]["image"]  # one image for every account
        served[name] = deployment
    assert sorted(served) == sorted(accounts)
    claims = set()
    for account in accounts.values():
        config = json.loads(account.run_tags["dagster-k8s/config"])
        (volume,) = config["pod_spec_config"]["volumes"]
        (mount,) = config["container_config"]["volume_mounts"]
        assert mount["name"] == volume["name"]
        assert account.db_path.parent == Path(mount["mount_path"])
        claims.add(volume["persistent_volume_claim"]["claim_name"])
        assert (ROOT / "deploy" / "Dockerfile").read_text().count(mount["mount_path"]) >= 1
    assert len(claims) == len(accounts)  # a volume of its own per account
