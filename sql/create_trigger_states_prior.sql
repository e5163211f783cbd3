-- trigger_states as they were before their last advance (the intervals of that advance are
-- in warehouse_info): when the scores of those intervals are computed again (history
-- backfilled, an ad set renamed, a new build), the advance is undone and evaluated again
-- instead of counting the same intervals twice.
CREATE TABLE IF NOT EXISTS trigger_states_prior (
    entity_id       VARCHAR   NOT NULL,
    trigger         VARCHAR   NOT NULL,
    streak          BIGINT    NOT NULL,
    condition_met   BOOLEAN   NOT NULL,
    last_eval_at    TIMESTAMP NOT NULL,
    last_fired_at   TIMESTAMP,
    cooldown_until  TIMESTAMP
);
