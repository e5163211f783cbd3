-- Per ad set and day: spend and the attribution-matured conversions and value, over
-- [$lo, $hi) (the response curves' data: the whole days before the evaluation point; the
-- bounds are parameters, which DuckDB prunes row groups by, where a subquery's it did not).
-- Whole days come as they are from insights_daily; only the dates in $edge_dates (those of
-- $hi and of $lo when they are not midnights) are summed from their hours in insights. Sums
-- in DECIMAL(38,10): exact, so the same in any order and split (DuckDB's parallel float sum
-- is not). The ids come as their integer keys (create_entity_keys; null for an id the rollup
-- has not keyed), which response_curves.daily_performance turns back into ids once per
-- distinct id: half a million strings cost more than the rest of the query. Rows come in no
-- particular order: the response curves group them per budget holder on integer keys
-- (holder_runs.holder_days), cheaper than sorting them here by ad set id (40 of 75 ms at 10k
-- ad sets).
WITH edge_days AS (
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
    WHERE ts >= $lo AND ts < $hi AND list_contains($edge_dates::DATE[], date)
    GROUP BY adset_id, date
)
SELECT
    adset_key,
    campaign_key,
    date,
    CAST(spend AS DOUBLE) AS spend,
    CAST(conversions AS DOUBLE) AS conversions,
    CAST(purchase_value AS DOUBLE) AS purchase_value
FROM insights_daily
WHERE date >= CAST($lo AS DATE) AND date < CAST($hi AS DATE)
  AND NOT list_contains($edge_dates::DATE[], date)
UNION ALL
SELECT
    adset.entity_key AS adset_key,
    campaign.entity_key AS campaign_key,
    edge_days.date,
    edge_days.spend,
    edge_days.conversions,
    edge_days.purchase_value
FROM edge_days
LEFT JOIN entity_keys AS adset ON adset.entity_id = edge_days.adset_id
LEFT JOIN entity_keys AS campaign ON campaign.entity_id = edge_days.campaign_id;
