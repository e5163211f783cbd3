-- One row per live plan whose rollback was decided: the plan-level "rolling back" marker.
-- Until ended_at is set (every move it applied is back, or was moved since by someone else),
-- the plan is unfinished (select_unfinished_plans) and the next cycles hold its pools, even
-- when every step had been sent (no 'abandoned' ledger row) and a rollback call failed.
CREATE TABLE IF NOT EXISTS execution_rollbacks (
    plan_id     VARCHAR   NOT NULL PRIMARY KEY,
    reason      VARCHAR   NOT NULL,
    run_id      VARCHAR,              -- the run that decided it
    started_at  TIMESTAMP NOT NULL,   -- wall clock, UTC
    ended_at    TIMESTAMP             -- NULL while moves remain to be set back
);
