-- Per ad set and local day: spend and the attribution-matured conversions and value, over the
-- $days whole days before $as_of (the response curves' data). Summed as DECIMAL(38,10):
-- exact, so the same in any order (DuckDB's parallel float sum is not).
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
WHERE ts >= CAST($as_of AS TIMESTAMP) - to_days(CAST($days AS INTEGER))
  AND ts < CAST($as_of AS TIMESTAMP)
GROUP BY adset_id, date
ORDER BY adset_id, date;
