-- /act_{id}/minimum_budgets as last read (minor units per currency); empty for the simulator.
CREATE TABLE IF NOT EXISTS account_minimum_budgets (
    currency                      VARCHAR NOT NULL,
    min_daily_budget_imp          BIGINT,
    min_daily_budget_video_views  BIGINT,
    min_daily_budget_high_freq    BIGINT,
    min_daily_budget_low_freq     BIGINT
);
