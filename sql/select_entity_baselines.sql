-- Each ad set's OWN baseline per evaluation point: the $baseline_days days that end where its
-- lookback window starts, i.e. ts in [as_of - lookback - baseline_days, as_of - lookback).
-- The current window is excluded, so a change shows against what came before it.
--
-- The lookback comes either per (ad set, as_of) from the staged frame `staged_lookbacks`
-- (cell, adset_id, as_of, lookback_hours; cell a distinct integer >= 0 per row, e.g. its
-- index, the rows distinct: a row listed twice would come back twice; then exactly those
-- pairs are returned), or, when $lookback_hours is not NULL, as one length for every ad set
-- with Insights before each point in $eval_points. An ad set whose rows all lie in its
-- window gets a zero baseline row.
-- Baseline days are 24-hour slots counted back from the baseline's end (offset 0 = the day
-- just before the lookback window); a day is active when the ad set spent in it. They come
-- back as the bits of a mask, bit d = offset d, split into two BIGINTs (bits 0-62 in
-- active_mask_lo, 63-125 in active_mask_hi; baseline_days <= 90): the caller lists them.
-- $lo/$hi bound every baseline and window ([earliest baseline start, latest as_of)). The
-- Insights are read as pieces (create_macro_insight_pieces): whole days from insights_daily,
-- and the hours of $edge_dates (the dates of every baseline start and end and as_of that is
-- not a midnight) from insights. A piece's spent hours that start before baseline_end's time
-- of day fall in one baseline day, the rest in the day before. The DOUBLE columns are summed as
-- DECIMAL(38,10) (exact, so the same in any order and split: DuckDB's parallel float sum is
-- not) and cast back.
WITH recent AS (
    SELECT * FROM insight_pieces($lo, $hi, $edge_dates::DATE[], []::DATE[])
),
points AS (
    SELECT DISTINCT unnest($eval_points::TIMESTAMP[]) AS as_of
),
grid AS (
    SELECT cell, adset_id, as_of, lookback_hours FROM staged_lookbacks
    UNION ALL
    -- cells below 0, so they never meet a staged one
    SELECT
        -row_number() OVER (ORDER BY a.adset_id, p.as_of) AS cell,
        a.adset_id,
        p.as_of,
        $lookback_hours::INTEGER AS lookback_hours
    FROM (SELECT DISTINCT adset_id FROM recent) AS a
    CROSS JOIN points AS p
    WHERE $lookback_hours::INTEGER IS NOT NULL
),
bounds AS (
    SELECT
        cell,
        adset_id,
        as_of,
        lookback_hours,
        baseline_end - to_days($baseline_days::INTEGER) AS baseline_start,
        baseline_end,
        CAST(baseline_end AS DATE) AS end_date,
        -- the hours of day that start before baseline_end (24 when it is past 23:00)
        CAST(hour(baseline_end) AS INTEGER)
            + CAST(baseline_end > date_trunc('hour', baseline_end) AS INTEGER) AS end_hour
    FROM (SELECT *, as_of - to_hours(lookback_hours) AS baseline_end FROM grid)
),
pieces AS (
    -- what varies per bound (its end's date and hour) is computed once per bound, above:
    -- per piece only integer arithmetic remains
    SELECT
        b.cell,
        i.campaign_id,
        i.piece_start < b.baseline_end AS in_baseline,
        i.spend,
        i.impressions,
        i.reach,
        i.clicks,
        i.conversions,
        i.purchase_value,
        i.spent_hours,
        -- a piece's hours before baseline_end's hour of day lie in the slot day_back days
        -- back, the others one slot later (slots are 24 h counted back from baseline_end)
        CAST(b.end_date - i.date AS INTEGER) AS day_back,
        b.end_hour
    FROM bounds AS b
    JOIN recent AS i
        ON i.adset_id = b.adset_id
        AND i.piece_start >= b.baseline_start
        AND i.piece_start < b.as_of
),
sums AS (
    -- grouped by the bound's integer cell (hashing one integer, not its ad set, point and
    -- length), joined back to the bound below
    SELECT
        cell,
        max(campaign_id) AS campaign_id,
        -- the active days as bits of one 128-bit mask: a cheap OR per row instead of two
        -- DISTINCT aggregates
        coalesce(
            bit_or(
                CASE WHEN in_baseline THEN
                    (CASE
                        WHEN spent_hours & ((1 << end_hour) - 1) != 0
                            AND day_back BETWEEN 0 AND $baseline_days - 1
                            THEN CAST(1 AS HUGEINT) << day_back
                        ELSE CAST(0 AS HUGEINT)
                    END)
                    | (CASE
                        WHEN spent_hours >> end_hour != 0
                            AND day_back - 1 BETWEEN 0 AND $baseline_days - 1
                            THEN CAST(1 AS HUGEINT) << (day_back - 1)
                        ELSE CAST(0 AS HUGEINT)
                    END)
                END
            ),
            CAST(0 AS HUGEINT)
        ) AS active_mask,
        CAST(coalesce(sum(spend) FILTER (WHERE in_baseline), 0) AS DOUBLE) AS baseline_spend,
        CAST(coalesce(sum(impressions) FILTER (WHERE in_baseline), 0) AS BIGINT)
            AS baseline_impressions,
        CAST(coalesce(sum(reach) FILTER (WHERE in_baseline), 0) AS BIGINT) AS baseline_reach,
        CAST(coalesce(sum(clicks) FILTER (WHERE in_baseline), 0) AS BIGINT) AS baseline_clicks,
        CAST(coalesce(sum(conversions) FILTER (WHERE in_baseline), 0) AS DOUBLE)
            AS baseline_conversions,
        CAST(coalesce(sum(purchase_value) FILTER (WHERE in_baseline), 0) AS DOUBLE)
            AS baseline_purchase_value
    FROM pieces
    GROUP BY cell
)
SELECT
    b.adset_id,
    s.campaign_id,
    b.as_of,
    b.lookback_hours,
    b.baseline_start,
    b.baseline_end,
    CAST(bit_count(active_mask) AS BIGINT) AS baseline_days_active,
    CAST(active_mask & ((CAST(1 AS HUGEINT) << 63) - 1) AS BIGINT) AS active_mask_lo,
    CAST(active_mask >> 63 AS BIGINT) AS active_mask_hi,
    baseline_spend,
    baseline_impressions,
    baseline_reach,
    baseline_clicks,
    baseline_conversions,
    baseline_purchase_value,
    CASE WHEN baseline_spend > 0 THEN baseline_purchase_value / baseline_spend END
        AS baseline_roas,
    CASE
        WHEN baseline_spend > 0 AND baseline_conversions > 0
            THEN baseline_spend / baseline_conversions
        WHEN baseline_spend > 0 THEN CAST('inf' AS DOUBLE)
    END AS baseline_cpa,
    CASE WHEN baseline_impressions > 0 THEN 100.0 * baseline_clicks / baseline_impressions END
        AS baseline_ctr,
    CASE WHEN baseline_reach > 0 THEN baseline_impressions / baseline_reach END
        AS baseline_frequency
FROM sums AS s
JOIN bounds AS b ON b.cell = s.cell
ORDER BY b.as_of, b.adset_id;
