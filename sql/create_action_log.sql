-- Append-only: every action the executor took or would take, with before/after values.
CREATE TABLE IF NOT EXISTS action_log (
    log_id         VARCHAR   NOT NULL PRIMARY KEY,
    plan_id        VARCHAR   NOT NULL,
    run_id         VARCHAR,
    entity_id      VARCHAR   NOT NULL,
    entity_type    VARCHAR   NOT NULL,
    pool           VARCHAR,
    mode           VARCHAR   NOT NULL,  -- 'observe' | 'live'
    step           VARCHAR   NOT NULL,  -- 'budget' | 'pause'
    before_budget  BIGINT,              -- minor units
    after_budget   BIGINT,              -- minor units
    before_status  VARCHAR,
    after_status   VARCHAR,
    status         VARCHAR   NOT NULL,  -- 'observed' | 'applied' | 'skipped' | 'failed'
    message        VARCHAR   NOT NULL,
    effective_at   TIMESTAMP NOT NULL,  -- the account's clock (account-local), for interval guards
    logged_at      TIMESTAMP NOT NULL   -- wall clock, UTC
);
