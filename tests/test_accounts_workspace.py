"""The UI with two accounts: examples/accounts/workspace.yaml loaded as the webserver loads it
(each location in its own code server) and read through the UI's GraphQL API: two code
locations, each with the pipeline's jobs, schedules and sensors and its assets under its own
prefix, each cycle job partitioned by its own account's days."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget
from dagster_graphql.test.utils import execute_dagster_graphql

from budget_pipeline.config.accounts import ACCOUNTS_ENV

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "accounts"

QUERY = """
{
  workspaceOrError {
    ... on Workspace {
      locationEntries {
        name
        locationOrLoadError {
          __typename
          ... on PythonError { message }
          ... on RepositoryLocation {
            repositories {
              jobs { name }
              schedules { name }
              sensors { name }
              assetNodes { assetKey { path } }
            }
          }
        }
      }
    }
  }
}
"""


def test_the_example_workspace_shows_each_account_as_its_own_location(monkeypatch):
    # the webserver's code servers inherit its environment, as under `dagster dev`
    monkeypatch.setenv(ACCOUNTS_ENV, str(EXAMPLE / "accounts.yaml"))
    target = WorkspaceFileTarget(paths=[str(EXAMPLE / "workspace.yaml")])
    with (
        dg.instance_for_test() as instance,
        WorkspaceProcessContext(instance, target) as process,
    ):
        result = execute_dagster_graphql(process.create_request_context(), QUERY)
    assert not result.errors, result.errors
    entries = result.data["workspaceOrError"]["locationEntries"]
    assert [e["name"] for e in entries] == ["shop_de", "shop_at"]
    for entry in entries:
        location = entry["locationOrLoadError"]
        assert location["__typename"] == "RepositoryLocation", location
        (repo,) = location["repositories"]
        jobs = {j["name"] for j in repo["jobs"]}
        assert {"budget_cycle_job", "budget_execution_job", "budget_rollback_job"} <= jobs
        assert {s["name"] for s in repo["schedules"]} >= {"daily_cycle_schedule"}
        assert {s["name"] for s in repo["sensors"]} >= {"execution_gate", "dead_run_reaper"}
        keys = [tuple(a["assetKey"]["path"]) for a in repo["assetNodes"]]
        assert (entry["name"], "rebalance_plan") in keys
        assert all(k[0] == entry["name"] for k in keys), keys
