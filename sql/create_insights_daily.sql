-- The hourly `insights` rolled up per ad set and local date, kept in step by the insights
-- merge (same transaction, same dates). The decision queries read whole days here and only
-- the hours of partly covered days from `insights` (see create_macro_insight_pieces), so a decision
-- scans ~1/24 of the rows. Sums are exact: DECIMAL(38,10) of each hour's value cast exactly
-- as the hourly queries cast it, and integers as HUGEINT, so any split of a range into days
-- and hours sums to the same number, to the bit, as the hours alone. The `*_am` columns are
-- the same sums over hours 0-11 only: a range cut at noon (the middle of a 72- or 168-hour
-- window ending at midnight) reads the day as two halves, the afternoon the whole less the
-- morning (exact), instead of its 24 hours. Each id comes with its integer key
-- (create_entity_keys), what the curves query reads instead of the id.
CREATE TABLE IF NOT EXISTS insights_daily (
    date            DATE            NOT NULL,
    adset_id        VARCHAR         NOT NULL,
    campaign_id     VARCHAR         NOT NULL,  -- max over the day's hours
    adset_key       INTEGER         NOT NULL,  -- the ids' keys (create_entity_keys)
    campaign_key    INTEGER         NOT NULL,
    hours           INTEGER         NOT NULL,  -- hourly rows that day
    spent_hours     INTEGER         NOT NULL,  -- bit h set when hour h had spend > 0
    spend           DECIMAL(38, 10) NOT NULL,
    impressions     HUGEINT         NOT NULL,
    reach           HUGEINT         NOT NULL,
    clicks          HUGEINT         NOT NULL,
    conversions     DECIMAL(38, 10) NOT NULL,  -- coalesce(conversions_est, conversions)
    purchase_value  DECIMAL(38, 10) NOT NULL,  -- coalesce(purchase_value_est, purchase_value)
    hours_am           INTEGER         NOT NULL,  -- the same, over hours 0-11
    spend_am           DECIMAL(38, 10) NOT NULL,
    impressions_am     HUGEINT         NOT NULL,
    reach_am           HUGEINT         NOT NULL,
    clicks_am          HUGEINT         NOT NULL,
    conversions_am     DECIMAL(38, 10) NOT NULL,
    purchase_value_am  DECIMAL(38, 10) NOT NULL
);
