-- Per entity and trigger: the streak of consecutive intervals its condition held, and cooldown.
CREATE TABLE IF NOT EXISTS trigger_states (
    entity_id       VARCHAR   NOT NULL,
    trigger         VARCHAR   NOT NULL,
    streak          BIGINT    NOT NULL,
    condition_met   BOOLEAN   NOT NULL,
    last_eval_at    TIMESTAMP NOT NULL,
    last_fired_at   TIMESTAMP,
    cooldown_until  TIMESTAMP,
    PRIMARY KEY (entity_id, trigger)
);
