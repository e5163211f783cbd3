-- Per ad set, evaluation point ($eval_points TIMESTAMP[]) and window length ($windows
-- INTEGER[] hours): Insights summed over ts in [as_of - window, as_of), the same split into
-- the earlier and the later half of the window (velocity trend), and the hours with spend.
-- Conversions and value are the attribution-matured estimates (see merge_insights_partition).
-- An ad set appears for a window only if it has at least one hourly row in it.
-- $lo/$hi bound every window ([earliest start, latest as_of)): only those hours are scanned
-- (the rows are stored in time order, so DuckDB skips the rest by their row groups' min/max).
WITH recent AS (
    SELECT * FROM insights WHERE ts >= $lo AND ts < $hi
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
)
SELECT
    i.adset_id,
    max(i.campaign_id) AS campaign_id,
    g.as_of,
    g.window_hours,
    sum(i.spend) AS spend,
    CAST(sum(i.impressions) AS BIGINT) AS impressions,
    CAST(sum(i.reach) AS BIGINT) AS reach,
    CAST(sum(i.clicks) AS BIGINT) AS clicks,
    sum(coalesce(i.conversions_est, i.conversions)) AS conversions,
    sum(coalesce(i.purchase_value_est, i.purchase_value)) AS purchase_value,
    coalesce(sum(i.spend) FILTER (WHERE i.ts < g.window_mid), 0) AS spend_early,
    CAST(coalesce(sum(i.impressions) FILTER (WHERE i.ts < g.window_mid), 0) AS BIGINT)
        AS impressions_early,
    CAST(coalesce(sum(i.reach) FILTER (WHERE i.ts < g.window_mid), 0) AS BIGINT) AS reach_early,
    CAST(coalesce(sum(i.clicks) FILTER (WHERE i.ts < g.window_mid), 0) AS BIGINT) AS clicks_early,
    coalesce(sum(coalesce(i.conversions_est, i.conversions)) FILTER (WHERE i.ts < g.window_mid), 0) AS conversions_early,
    coalesce(sum(coalesce(i.purchase_value_est, i.purchase_value)) FILTER (WHERE i.ts < g.window_mid), 0) AS purchase_value_early,
    coalesce(sum(i.spend) FILTER (WHERE i.ts >= g.window_mid), 0) AS spend_late,
    CAST(coalesce(sum(i.impressions) FILTER (WHERE i.ts >= g.window_mid), 0) AS BIGINT)
        AS impressions_late,
    CAST(coalesce(sum(i.reach) FILTER (WHERE i.ts >= g.window_mid), 0) AS BIGINT) AS reach_late,
    CAST(coalesce(sum(i.clicks) FILTER (WHERE i.ts >= g.window_mid), 0) AS BIGINT) AS clicks_late,
    coalesce(sum(coalesce(i.conversions_est, i.conversions)) FILTER (WHERE i.ts >= g.window_mid), 0) AS conversions_late,
    coalesce(sum(coalesce(i.purchase_value_est, i.purchase_value)) FILTER (WHERE i.ts >= g.window_mid), 0) AS purchase_value_late,
    CAST(count(*) FILTER (WHERE i.spend > 0) AS BIGINT) AS hours_with_spend
FROM grid AS g
JOIN recent AS i
    ON i.ts >= g.window_start
    AND i.ts < g.as_of
GROUP BY i.adset_id, g.as_of, g.window_hours
ORDER BY g.as_of, g.window_hours, i.adset_id;
