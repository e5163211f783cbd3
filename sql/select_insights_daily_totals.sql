-- Hourly rows on local dates $start..$end in `insights`, and in the rollup `insights_daily`
-- (equal unless a write bypassed the insights merge).
SELECT
    (SELECT count(*) FROM insights WHERE date BETWEEN $start AND $end) AS hourly_rows,
    (SELECT coalesce(sum(hours), 0) FROM insights_daily WHERE date BETWEEN $start AND $end)
        AS rollup_rows;
