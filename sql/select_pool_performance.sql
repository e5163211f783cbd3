-- Per pool: spend, attribution-adjusted purchase value and conversions of the hours in
-- [$as_of - $hours h, $as_of) (one evaluation interval before a plan), for the plots.
SELECT
    e.pool,
    coalesce(sum(i.spend), 0) AS spend,
    coalesce(sum(coalesce(i.purchase_value_est, i.purchase_value)), 0) AS value,
    coalesce(sum(coalesce(i.conversions_est, i.conversions)), 0) AS conversions
FROM insights AS i
JOIN ad_entities AS e ON e.entity_id = i.adset_id
WHERE e.pool IS NOT NULL
  AND i.ts >= CAST($as_of AS TIMESTAMP) - to_hours(CAST($hours AS BIGINT))
  AND i.ts < CAST($as_of AS TIMESTAMP)
GROUP BY e.pool
ORDER BY e.pool;
