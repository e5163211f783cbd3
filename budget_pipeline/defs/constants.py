"""Names shared by the Dagster definitions: asset groups, the DuckDB write pool, tags."""

EXTRACTION = "extraction"
WAREHOUSE = "warehouse"
DECISIONS = "decisions"
EXECUTION = "execution"
MONITORING = "monitoring"
COUNTERFACTUAL = "counterfactual"

# Every asset that opens the DuckDB file takes a slot of this pool; dagster.yaml limits it to
# one, so two runs never hold the single-writer file at once.
DUCKDB_POOL = "duckdb_write"

PLAN_ID_TAG = "budget_pipeline/plan_id"
# Set on an execution run when it ends: complete | incomplete | rolled_back | observed | held |
# nothing | refused. The gate relaunches a plan whose newest run is incomplete or died.
OUTCOME_TAG = "budget_pipeline/outcome"
# Set on a budget_rollback_job run: the plan it rolls back (not PLAN_ID_TAG: the execution gate
# must not take a rollback run for an execution of the plan).
ROLLBACK_TAG = "budget_pipeline/rollback_plan_id"
# Set with outcome "held": the pools (comma-separated) whose steps waited on observe mode or the
# kill switch; the gate relaunches the plan once one of them may be called again.
HELD_POOLS_TAG = "budget_pipeline/held_pools"
# Set on a run the gate launches to finish a plan an earlier run left unfinished.
FINISH_TAG = "budget_pipeline/finish_attempt"
# Set on every run of an ad account: its ad account id (act_…). The run queue allows one
# in-progress run per value (dagster.yaml); plans, execution runs, alerts and dead runs are
# looked up per account by it (budget_pipeline/defs/scope.py).
ACCOUNT_TAG = "budget_pipeline/account"
