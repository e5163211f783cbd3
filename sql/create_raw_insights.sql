-- Hourly ad-set Insights exactly as extracted (validated), one batch per pull window.
CREATE TABLE IF NOT EXISTS raw_insights (
    date            DATE      NOT NULL,
    hour            TINYINT   NOT NULL,
    campaign_id     VARCHAR   NOT NULL,
    adset_id        VARCHAR   NOT NULL,
    spend           DOUBLE    NOT NULL,
    impressions     BIGINT    NOT NULL,
    reach           BIGINT    NOT NULL,
    clicks          BIGINT    NOT NULL,
    conversions     DOUBLE    NOT NULL,
    purchase_value  DOUBLE    NOT NULL,
    source          VARCHAR   NOT NULL,
    pulled_at       TIMESTAMP NOT NULL,
    reported_at     TIMESTAMP NOT NULL   -- the source's clock, account-local
);
