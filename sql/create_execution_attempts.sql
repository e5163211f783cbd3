-- One row per execution pass over a plan (a run of budget_execution): how many times a plan
-- has been tried decides when an unfinishable plan is rolled back.
CREATE TABLE IF NOT EXISTS execution_attempts (
    plan_id     VARCHAR   NOT NULL,
    attempt     INTEGER   NOT NULL,
    run_id      VARCHAR,
    started_at  TIMESTAMP NOT NULL,  -- wall clock, UTC
    PRIMARY KEY (plan_id, attempt)
);
