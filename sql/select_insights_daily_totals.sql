-- Hourly rows on local dates $start..$end in `insights`, and in the rollup `insights_daily`,
-- each also summed weighted by its date (days since 2000-01-01): equal unless a write bypassed
-- the insights merge (the weights catch rows gone on one date and added on another). One
-- scan of each table.
SELECT h.n AS hourly_rows, r.n AS rollup_rows, h.days AS hourly_days, r.days AS rollup_days
FROM (
    SELECT count(*) AS n, coalesce(sum(CAST(date - DATE '2000-01-01' AS BIGINT)), 0) AS days
    FROM insights
    WHERE date BETWEEN $start AND $end
) AS h,
(
    SELECT
        coalesce(sum(hours), 0) AS n,
        coalesce(sum(CAST(hours AS BIGINT) * CAST(date - DATE '2000-01-01' AS BIGINT)), 0)
            AS days
    FROM insights_daily
    WHERE date BETWEEN $start AND $end
) AS r;
