-- Per ad set, evaluation point ($eval_points TIMESTAMP[]) and window length ($windows
-- INTEGER[] hours): Insights summed over ts in [as_of - window, as_of), the spend and the
-- conversions split into the earlier and the later half of the window (the velocity trend
-- reads only those), and the hours with spend.
-- Conversions and value are the attribution-matured estimates (see merge_insights_partition).
-- An ad set appears for a window only if it has at least one hourly row in it.
-- $lo/$hi bound every window ([earliest start, latest as_of)). The Insights are read as pieces
-- (create_macro_insight_pieces): whole days from insights_daily, the halves of $noon_dates
-- (the dates whose only cut is a noon, such as a 72-hour window's middle) from there too,
-- and the hours of $edge_dates (the dates of every other start, middle and as_of that is not
-- a midnight) from insights. The DOUBLE columns are summed as DECIMAL(38,10) (exact, so the
-- same in any order and split: DuckDB's parallel float sum is not) and cast back; the later
-- half is the whole minus the earlier, exactly, in DECIMAL.
WITH recent AS (
    SELECT * FROM insight_pieces($lo, $hi, $edge_dates::DATE[], $noon_dates::DATE[])
),
points AS (
    SELECT DISTINCT unnest($eval_points::TIMESTAMP[]) AS as_of
),
lengths AS (
    SELECT DISTINCT unnest($windows::INTEGER[]) AS window_hours
),
grid AS (
    SELECT
        p.as_of,
        w.window_hours,
        p.as_of - to_hours(w.window_hours) AS window_start,
        p.as_of - to_minutes(w.window_hours * 30) AS window_mid
    FROM points AS p
    CROSS JOIN lengths AS w
),
sums AS (
    SELECT
        i.adset_id,
        max(i.campaign_id) AS campaign_id,
        g.as_of,
        g.window_hours,
        sum(i.spend) AS spend,
        sum(i.impressions) AS impressions,
        sum(i.reach) AS reach,
        sum(i.clicks) AS clicks,
        sum(i.conversions) AS conversions,
        sum(i.purchase_value) AS purchase_value,
        coalesce(sum(i.spend) FILTER (WHERE i.piece_start < g.window_mid), 0) AS spend_early,
        coalesce(sum(i.conversions) FILTER (WHERE i.piece_start < g.window_mid), 0) AS conversions_early,
        sum(bit_count(i.spent_hours)) AS hours_with_spend
    FROM grid AS g
    JOIN recent AS i
        ON i.piece_start >= g.window_start
        AND i.piece_start < g.as_of
    GROUP BY i.adset_id, g.as_of, g.window_hours
)
SELECT
    adset_id,
    campaign_id,
    as_of,
    window_hours,
    CAST(spend AS DOUBLE) AS spend,
    CAST(impressions AS BIGINT) AS impressions,
    CAST(reach AS BIGINT) AS reach,
    CAST(clicks AS BIGINT) AS clicks,
    CAST(conversions AS DOUBLE) AS conversions,
    CAST(purchase_value AS DOUBLE) AS purchase_value,
    CAST(spend_early AS DOUBLE) AS spend_early,
    CAST(conversions_early AS DOUBLE) AS conversions_early,
    CAST(spend - spend_early AS DOUBLE) AS spend_late,
    CAST(conversions - conversions_early AS DOUBLE) AS conversions_late,
    CAST(hours_with_spend AS BIGINT) AS hours_with_spend
FROM sums
ORDER BY as_of, window_hours, adset_id;
