-- Local dates $start..$end whose hourly row count in `insights` differs from the rollup's
-- (a write that bypassed the insights merge): the first five dates with both counts, and how
-- many dates are off in all.
WITH hourly AS (
    SELECT date, count(*) AS hourly_rows FROM insights
    WHERE date BETWEEN $start AND $end GROUP BY date
),
daily AS (
    SELECT date, sum(hours) AS rollup_rows FROM insights_daily
    WHERE date BETWEEN $start AND $end GROUP BY date
),
off AS (
    SELECT
        coalesce(h.date, d.date) AS date,
        coalesce(h.hourly_rows, 0) AS hourly_rows,
        coalesce(d.rollup_rows, 0) AS rollup_rows
    FROM hourly AS h
    FULL JOIN daily AS d ON h.date = d.date
    WHERE coalesce(h.hourly_rows, 0) <> coalesce(d.rollup_rows, 0)
)
SELECT *, count(*) OVER () AS dates_off
FROM off
ORDER BY date
LIMIT 5;
