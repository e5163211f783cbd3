"""Names shared by the Dagster definitions: asset groups, the DuckDB write pool, tags."""

EXTRACTION = "extraction"
WAREHOUSE = "warehouse"
DECISIONS = "decisions"
EXECUTION = "execution"

# Every asset that opens the DuckDB file takes a slot of this pool; dagster.yaml limits it to
# one, so two runs never hold the single-writer file at once.
DUCKDB_POOL = "duckdb_write"

PLAN_ID_TAG = "budget_pipeline/plan_id"
