-- Per pool: spend, attribution-adjusted purchase value and conversions of the hours in
-- [$as_of - $hours h, $as_of) (one evaluation interval before a plan), for the plots. Summed
-- as DECIMAL(38,10): exact, so the same in any order (DuckDB's parallel float sum is not).
SELECT
    e.pool,
    CAST(coalesce(sum(CAST(i.spend AS DECIMAL(38, 10))), 0) AS DOUBLE) AS spend,
    CAST(
        coalesce(sum(CAST(coalesce(i.purchase_value_est, i.purchase_value) AS DECIMAL(38, 10))), 0)
        AS DOUBLE
    ) AS value,
    CAST(
        coalesce(sum(CAST(coalesce(i.conversions_est, i.conversions) AS DECIMAL(38, 10))), 0)
        AS DOUBLE
    ) AS conversions
FROM insights AS i
JOIN ad_entities AS e ON e.entity_id = i.adset_id
WHERE e.pool IS NOT NULL
  AND i.ts >= CAST($as_of AS TIMESTAMP) - to_hours(CAST($hours AS BIGINT))
  AND i.ts < CAST($as_of AS TIMESTAMP)
GROUP BY e.pool
ORDER BY e.pool;
