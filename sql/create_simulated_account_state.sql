-- The simulated account's own state (its clock and the budget changes applied to it), so that
-- changes written in live mode persist across runs and the loop closes.
CREATE TABLE IF NOT EXISTS simulated_account_state (
    scenario    VARCHAR   NOT NULL PRIMARY KEY,
    state       VARCHAR   NOT NULL,  -- JSON
    updated_at  TIMESTAMP NOT NULL
);
