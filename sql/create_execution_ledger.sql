-- One row per (plan, entity, step) of a live plan: written for every step before the first call
-- ('pending'), then before ('started') and after each call, so a plan id is applied at most once
-- even when a run dies between two writes, and a plan left half-applied is known.
-- States: pending | started | failed | deferred (not finished: a later run sends them)
--       | applied | observed | skipped | abandoned | rolled_back | rollback_skipped (finished).
CREATE TABLE IF NOT EXISTS execution_ledger (
    plan_id       VARCHAR   NOT NULL,
    entity_id     VARCHAR   NOT NULL,
    step          VARCHAR   NOT NULL,  -- 'budget' | 'pause'
    state         VARCHAR   NOT NULL,
    attempts      INTEGER   NOT NULL,
    updated_at    TIMESTAMP NOT NULL,  -- wall clock, UTC
    effective_at  TIMESTAMP,           -- the account's clock when the state was set
    PRIMARY KEY (plan_id, entity_id, step)
);
