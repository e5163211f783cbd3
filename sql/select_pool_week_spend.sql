-- Per pool: spend in [$start, $end) of the ad sets whose budget is daily (their own, or their
-- campaign's), for budget utilisation over the week. Summed as DECIMAL(38,10): exact, so the
-- same in any order (DuckDB's parallel float sum is not).
SELECT
    a.pool,
    CAST(coalesce(sum(CAST(i.spend AS DECIMAL(38, 10))), 0) AS DOUBLE) AS spend,
    count(DISTINCT i.date) AS days
FROM insights AS i
JOIN ad_entities AS a ON a.entity_id = i.adset_id
LEFT JOIN ad_entities AS c ON c.entity_id = a.campaign_id AND c.entity_type = 'campaign'
WHERE a.pool IS NOT NULL
  AND (a.budget_type = 'daily' OR (a.budget_type IS NULL AND c.budget_type = 'daily'))
  AND i.ts >= CAST($start AS TIMESTAMP) AND i.ts < CAST($end AS TIMESTAMP)
GROUP BY a.pool
ORDER BY a.pool;
