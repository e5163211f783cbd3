"""The contract between the assets and the alert sensors: asset keys and metadata names.

The sensors in ``budget_pipeline/defs/alerts/`` read only Dagster's event log, never the
warehouse, so everything an alert says comes from these names. An asset that renames one of
them silences its alert; ``tests/alerts`` runs the real assets to catch that.

``rebalance_plan`` materialization (:data:`PLAN_ASSET`)
    ``plan_id`` (text), ``pauses`` (int; > 0 alerts), ``as_of`` (text, optional) and
    ``moves_table`` (markdown; the table whose header has ``action`` lists one row per moved
    or paused entity; the alert quotes the rows whose action is ``pause``, with the entity's
    name when a column header contains "name").

Blocking checks on ``rebalance_plan``
    An ``AssetCheckEvaluation`` with ``passed=False`` alerts, once per plan id and set of failed
    checks. Its metadata: ``plan_id`` (text), ``violations`` (int, optional), ``details``
    (markdown, optional: the entities of a table with an ``entity_id`` column are named).

``budget_execution`` materialization (:data:`EXECUTION_ASSET`)
    ``plan_id`` (text) and the counts :data:`EXECUTION_PROBLEM_COUNTS` (``failed``,
    ``skipped``, ``deferred``; int, a missing one counts 0); any > 0 alerts. ``applied`` and
    ``observed`` are quoted when present. The ``action_log`` materialization of the same run
    (:data:`ACTION_LOG_ASSET`) carries ``entries`` (markdown with ``entity_id``, ``status``,
    ``before_budget``, ``after_budget``, ``message``); its failed/skipped/deferred rows are
    quoted, budgets given as integer minor units are shown in major units with the currency.

``score_drift`` materialization (:data:`DRIFT_ASSET`, the weekly monitoring asset)
    ``flagged_pools``: the names of the pools whose score drifted enough to recalibrate, as a
    JSON list (``MetadataValue.json([...])`` or a text holding JSON); non-empty alerts. Optional:
    ``drift_table`` (markdown, its rows quoted) and ``as_of`` (text): the same flags for the same
    partition (else ``as_of``) are sent once, however often the asset is re-materialized.

Failed runs
    A ``RUN_FAILURE`` of a job in :data:`WATCHED_JOBS` alerts, naming the failed step and its
    error; a run whose failure is already told by a check or execution alert is not repeated.
"""

from __future__ import annotations

PLAN_ASSET = "rebalance_plan"
EXECUTION_ASSET = "budget_execution"
ACTION_LOG_ASSET = "action_log"
DRIFT_ASSET = "score_drift"

PLAN_ID = "plan_id"
PAUSES = "pauses"
AS_OF = "as_of"
MOVES_TABLE = "moves_table"
VIOLATIONS = "violations"
CHECK_DETAILS = "details"
EXECUTION_PROBLEM_COUNTS = ("failed", "skipped", "deferred")
EXECUTION_OTHER_COUNTS = ("applied", "observed")
ACTION_LOG_ENTRIES = "entries"
FLAGGED_POOLS = "flagged_pools"
DRIFT_TABLE = "drift_table"

# Jobs whose failure alerts: the two named jobs, plus the implicit asset jobs that a
# "Materialize" click in the UI and ``budget-pipeline run`` (``dg.materialize``) launch.
WATCHED_JOBS = frozenset(
    {"budget_cycle_job", "budget_execution_job", "__ASSET_JOB", "__ephemeral_asset_job__"}
)
