-- One row per (plan, entity, step): written before and after each call, so a plan id is
-- applied at most once even when a run dies between two writes.
CREATE TABLE IF NOT EXISTS execution_ledger (
    plan_id     VARCHAR   NOT NULL,
    entity_id   VARCHAR   NOT NULL,
    step        VARCHAR   NOT NULL,  -- 'budget' | 'pause'
    state       VARCHAR   NOT NULL,  -- 'started' | 'applied' | 'observed' | 'skipped' | 'failed'
    attempts    INTEGER   NOT NULL,
    updated_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (plan_id, entity_id, step)
);
