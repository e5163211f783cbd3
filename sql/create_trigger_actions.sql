-- Actions fired by triggers, by evaluation time; the planner reads the newest as_of.
CREATE TABLE IF NOT EXISTS trigger_actions (
    entity_id  VARCHAR   NOT NULL,
    action     VARCHAR   NOT NULL,
    pct        DOUBLE,
    trigger    VARCHAR   NOT NULL,
    score      DOUBLE,
    as_of      TIMESTAMP NOT NULL
);
