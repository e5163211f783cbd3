-- Per ad set and evaluation point ($eval_points TIMESTAMP[]): the spend summed over ts in
-- [as_of - $hours, as_of), and the ad set's campaign (the same values as the spend and
-- campaign_id of select_window_metrics; an ad set appears only if it has at least one hourly
-- row in the window). The 7-day spend volume that picks each ad set's lookback reads only
-- this. $lo/$hi bound every window; the Insights are read as pieces
-- (create_macro_insight_pieces): whole days from insights_daily and the hours of $edge_dates
-- (the dates of every start and as_of that is not a midnight) from insights. Spend is summed
-- as DECIMAL(38,10), exact in any order, and cast back.
WITH recent AS (
    SELECT * FROM insight_pieces($lo, $hi, $edge_dates::DATE[], []::DATE[])
),
points AS (
    SELECT DISTINCT unnest($eval_points::TIMESTAMP[]) AS as_of
)
SELECT
    i.adset_id,
    max(i.campaign_id) AS campaign_id,
    p.as_of,
    CAST(sum(i.spend) AS DOUBLE) AS spend
FROM points AS p
JOIN recent AS i
    ON i.piece_start >= p.as_of - to_hours($hours::INTEGER)
    AND i.piece_start < p.as_of
GROUP BY i.adset_id, p.as_of
ORDER BY p.as_of, i.adset_id;
