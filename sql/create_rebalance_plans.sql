-- Every plan ever made, one row per budget holder; plan_id is stable for identical inputs.
CREATE TABLE IF NOT EXISTS rebalance_plans (
    plan_id        VARCHAR   NOT NULL,
    entity_id      VARCHAR   NOT NULL,
    entity_type    VARCHAR   NOT NULL,
    campaign_id    VARCHAR   NOT NULL,
    pool           VARCHAR   NOT NULL,
    tier           BIGINT    NOT NULL,
    old_budget     BIGINT    NOT NULL,  -- minor units
    new_budget     BIGINT    NOT NULL,  -- minor units
    delta          BIGINT    NOT NULL,
    target_budget  BIGINT    NOT NULL,
    pause          BOOLEAN   NOT NULL,
    action         VARCHAR   NOT NULL,
    trigger        VARCHAR,
    score          DOUBLE,
    reason         VARCHAR   NOT NULL,
    as_of          TIMESTAMP NOT NULL,
    created_at     TIMESTAMP NOT NULL,
    PRIMARY KEY (plan_id, entity_id)
);
