-- Per ad set and local day: spend and the attribution-matured conversions and value, over the
-- $days whole days before $as_of (the response curves' data). Read as pieces (whole days from
-- insights_daily, the hours of $edge_dates from insights: the dates of $as_of and of the
-- start when they are not midnights) and summed in DECIMAL(38,10): exact, so the same in any
-- order and split (DuckDB's parallel float sum is not).
SELECT
    adset_id,
    max(campaign_id) AS campaign_id,
    date,
    CAST(sum(spend) AS DOUBLE) AS spend,
    CAST(sum(conversions) AS DOUBLE) AS conversions,
    CAST(sum(purchase_value) AS DOUBLE) AS purchase_value
FROM insight_pieces(
    CAST($as_of AS TIMESTAMP) - to_days(CAST($days AS INTEGER)),
    CAST($as_of AS TIMESTAMP),
    $edge_dates::DATE[]
)
GROUP BY adset_id, date
ORDER BY adset_id, date;
