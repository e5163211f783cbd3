-- Hourly ad-set Insights in the account's local time; one row per ad set and hour.
CREATE TABLE IF NOT EXISTS insights (
    date            DATE      NOT NULL,
    hour            TINYINT   NOT NULL CHECK (hour BETWEEN 0 AND 23),
    ts              TIMESTAMP NOT NULL,  -- date + hour, naive account-local
    campaign_id     VARCHAR   NOT NULL,
    adset_id        VARCHAR   NOT NULL,
    spend           DOUBLE    NOT NULL CHECK (spend >= 0),
    impressions     BIGINT    NOT NULL CHECK (impressions >= 0),
    reach           BIGINT    NOT NULL CHECK (reach >= 0),
    clicks          BIGINT    NOT NULL CHECK (clicks >= 0),
    conversions     DOUBLE    NOT NULL CHECK (conversions >= 0),
    purchase_value  DOUBLE    NOT NULL CHECK (purchase_value >= 0),
    pulled_at       TIMESTAMP NOT NULL,
    -- the source's clock when it reported these values (account-local); late conversions
    -- keep arriving for ~3 days, so younger rows are incomplete
    reported_at     TIMESTAMP,
    -- conversions and value scaled up by the expected share already reported at that age
    -- (settings.attribution_maturity); what the signals use
    conversions_est     DOUBLE,
    purchase_value_est  DOUBLE
    -- one row per (adset_id, date, hour): no primary key (it made replacing a window 40x
    -- slower at 10k ad sets); the insights asset checks it in the write's transaction
);
