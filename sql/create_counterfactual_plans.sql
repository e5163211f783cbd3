-- What a policy would have done on each past day (the counterfactual_plans asset): one row per
-- budget holder and day, the plan of that day's 00:00 made from the would-have budgets.
CREATE TABLE IF NOT EXISTS counterfactual_plans (
    date           DATE      NOT NULL,  -- the day the plan's budgets hold
    as_of          TIMESTAMP NOT NULL,  -- when it was made (data strictly before it)
    plan_id        VARCHAR   NOT NULL,
    entity_id      VARCHAR   NOT NULL,
    entity_type    VARCHAR   NOT NULL,
    campaign_id    VARCHAR   NOT NULL,
    pool           VARCHAR   NOT NULL,
    tier           BIGINT    NOT NULL,
    old_budget     BIGINT    NOT NULL,  -- minor units: the would-have budget of the day before
    new_budget     BIGINT    NOT NULL,
    delta          BIGINT    NOT NULL,
    target_budget  BIGINT    NOT NULL,
    pause          BOOLEAN   NOT NULL,
    action         VARCHAR   NOT NULL,
    trigger        VARCHAR,
    score          DOUBLE,
    reason         VARCHAR   NOT NULL,
    active         BOOLEAN   NOT NULL,  -- ACTIVE after the plan
    real_budget    BIGINT,              -- what the account really had that day
    real_active    BOOLEAN,
    started_on     DATE      NOT NULL,  -- the day the policy took over from the real budgets
    policy         VARCHAR   NOT NULL,  -- the pools file's policies, or the Meta rule given
    created_at     TIMESTAMP NOT NULL
);
