-- Per ad set and local day: spend and the attribution-matured conversions and value, over the
-- $days whole days before $as_of (the response curves' data). Whole days come as they are
-- from insights_daily; only the dates in $edge_dates (those of $as_of and of the start when
-- they are not midnights) are summed from their hours in insights. Sums in DECIMAL(38,10):
-- exact, so the same in any order and split (DuckDB's parallel float sum is not). Rows come
-- in no particular order: the response curves group them per budget holder on integer keys
-- (holder_runs.holder_days), cheaper than sorting them here by ad set id (40 of 75 ms at 10k
-- ad sets).
WITH bounds AS (
    SELECT
        CAST($as_of AS TIMESTAMP) - to_days(CAST($days AS INTEGER)) AS lo,
        CAST($as_of AS TIMESTAMP) AS hi
)
SELECT
    adset_id,
    campaign_id,
    date,
    CAST(spend AS DOUBLE) AS spend,
    CAST(conversions AS DOUBLE) AS conversions,
    CAST(purchase_value AS DOUBLE) AS purchase_value
FROM insights_daily
WHERE date >= CAST((SELECT lo FROM bounds) AS DATE)
  AND date < CAST((SELECT hi FROM bounds) AS DATE)
  AND NOT list_contains($edge_dates::DATE[], date)
UNION ALL
SELECT
    adset_id,
    max(campaign_id) AS campaign_id,
    date,
    CAST(sum(CAST(spend AS DECIMAL(38, 10))) AS DOUBLE) AS spend,
    CAST(sum(CAST(coalesce(conversions_est, conversions) AS DECIMAL(38, 10))) AS DOUBLE)
        AS conversions,
    CAST(sum(CAST(coalesce(purchase_value_est, purchase_value) AS DECIMAL(38, 10))) AS DOUBLE)
        AS purchase_value
FROM insights
WHERE ts >= (SELECT lo FROM bounds)
  AND ts < (SELECT hi FROM bounds)
  AND list_contains($edge_dates::DATE[], date)
GROUP BY adset_id, date;
