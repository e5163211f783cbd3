-- What the would-have budgets would have earned (the counterfactual_outcomes asset): per day,
-- pool and method ('simulator': the simulated account's own truth; 'response_curves': the
-- estimate from fitted response curves). Money in major units.
CREATE TABLE IF NOT EXISTS counterfactual_outcomes (
    date              DATE      NOT NULL,
    pool              VARCHAR   NOT NULL,
    method            VARCHAR   NOT NULL,
    real_spend        DOUBLE    NOT NULL,
    real_value        DOUBLE    NOT NULL,
    would_have_spend  DOUBLE    NOT NULL,
    would_have_value  DOUBLE    NOT NULL,
    value_difference  DOUBLE    NOT NULL,  -- would-have − real
    difference_low    DOUBLE    NOT NULL,  -- its interval (see `interval`)
    difference_high   DOUBLE    NOT NULL,
    interval          VARCHAR   NOT NULL,
    edits             BIGINT    NOT NULL,  -- would-have budget changes and pauses that day
    money_moved       DOUBLE    NOT NULL,  -- would-have budget added to the pool's growing holders
    policy            VARCHAR   NOT NULL,
    started_on        DATE      NOT NULL,
    created_at        TIMESTAMP NOT NULL
);
