-- One row per local date of $start..$end: the day's totals (per-partition metadata).
SELECT
    date,
    count(*) AS rows,
    count(DISTINCT adset_id) AS adsets,
    coalesce(sum(spend), 0) AS spend,
    coalesce(sum(conversions), 0) AS conversions,
    coalesce(sum(purchase_value), 0) AS purchase_value
FROM insights
WHERE date BETWEEN $start AND $end
GROUP BY date
ORDER BY date;
