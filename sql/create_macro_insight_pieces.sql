-- insight_pieces(lo, hi, edge_dates, noon_dates): the Insights of [lo, hi) as pieces, each
-- wholly inside or wholly outside any range whose bounds are midnights, noons on `noon_dates`
-- or lie on `edge_dates`: one row per ad set and whole date from insights_daily; two per ad set
-- on the `noon_dates` (the morning, hours 0-11, and the afternoon: the whole day less the
-- morning); and one per hour on the `edge_dates` from `insights` (an edge date is read by
-- the hour even if it is a noon date too). Same columns either way (`piece_start` = the
-- date's midnight, noon or the hour; `spent_hours` = bit per hour with spend). The decision
-- queries pass every bound of theirs that is not a midnight as an edge or noon date, so their
-- sums over pieces equal, to the bit, the sums over hours (exact DECIMAL and HUGEINT), at a
-- 24th of the rows on whole days and a 12th on the halved ones.
CREATE OR REPLACE MACRO insight_pieces(lo, hi, edge_dates, noon_dates) AS TABLE
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
  AND NOT list_contains(noon_dates, date)
UNION ALL
SELECT
    adset_id,
    campaign_id,
    date,
    CAST(date AS TIMESTAMP) AS piece_start,
    spent_hours & 4095 AS spent_hours,  -- hours 0-11
    spend_am AS spend,
    impressions_am AS impressions,
    reach_am AS reach,
    clicks_am AS clicks,
    conversions_am AS conversions,
    purchase_value_am AS purchase_value
FROM insights_daily
WHERE list_contains(noon_dates, date) AND NOT list_contains(edge_dates, date)
  AND hours_am > 0  -- a half without hourly rows is no piece (an ad set without rows in a
                    -- range is not in it)
  AND CAST(date AS TIMESTAMP) >= lo AND CAST(date AS TIMESTAMP) < hi
UNION ALL
SELECT
    adset_id,
    campaign_id,
    date,
    CAST(date AS TIMESTAMP) + INTERVAL 12 HOUR AS piece_start,
    spent_hours & 16773120 AS spent_hours,  -- hours 12-23
    spend - spend_am AS spend,
    impressions - impressions_am AS impressions,
    reach - reach_am AS reach,
    clicks - clicks_am AS clicks,
    conversions - conversions_am AS conversions,
    purchase_value - purchase_value_am AS purchase_value
FROM insights_daily
WHERE list_contains(noon_dates, date) AND NOT list_contains(edge_dates, date)
  AND hours > hours_am
  AND CAST(date AS TIMESTAMP) + INTERVAL 12 HOUR >= lo
  AND CAST(date AS TIMESTAMP) + INTERVAL 12 HOUR < hi
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
