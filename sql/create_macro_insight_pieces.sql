-- insight_pieces(lo, hi, edge_dates): the Insights of [lo, hi) as pieces, each wholly inside
-- or wholly outside any range whose bounds are midnights or lie on `edge_dates`: one row per
-- ad set and whole date from insights_daily, and one per hour on the edge dates from
-- `insights`. Same columns either way (`piece_start` = the date's midnight or the hour;
-- `spent_hours` = bit per hour with spend). The decision queries pass every bound of theirs
-- that is not a midnight as an edge date, so their sums over pieces equal, to the bit, the
-- sums over hours (exact DECIMAL and HUGEINT), at a 24th of the rows on whole days.
CREATE OR REPLACE MACRO insight_pieces(lo, hi, edge_dates) AS TABLE
SELECT
    adset_id,
    campaign_id,
    date,
    CAST(date AS TIMESTAMP) AS piece_start,
    spent_hours,
    spend,
    impressions,
    reach,
    clicks,
    conversions,
    purchase_value
FROM insights_daily
WHERE date >= CAST(lo AS DATE) AND date < CAST(hi AS DATE)
  AND NOT list_contains(edge_dates, date)
UNION ALL
SELECT
    adset_id,
    campaign_id,
    date,
    ts AS piece_start,
    CASE WHEN spend > 0 THEN CAST(1 AS INTEGER) << CAST(hour AS INTEGER) ELSE 0 END
        AS spent_hours,
    CAST(spend AS DECIMAL(38, 10)) AS spend,
    CAST(impressions AS HUGEINT) AS impressions,
    CAST(reach AS HUGEINT) AS reach,
    CAST(clicks AS HUGEINT) AS clicks,
    CAST(coalesce(conversions_est, conversions) AS DECIMAL(38, 10)) AS conversions,
    CAST(coalesce(purchase_value_est, purchase_value) AS DECIMAL(38, 10)) AS purchase_value
FROM insights
WHERE ts >= lo AND ts < hi AND list_contains(edge_dates, date);
