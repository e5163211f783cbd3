-- Hourly rows on local dates $start..$end in `insights`, and in the rollup `insights_daily`,
-- each also summed weighted by its date (days since 2000-01-01): equal unless a write bypassed
-- the insights merge (the weights catch rows gone on one date and added on another).
SELECT
    (SELECT count(*) FROM insights WHERE date BETWEEN $start AND $end) AS hourly_rows,
    (SELECT coalesce(sum(hours), 0) FROM insights_daily WHERE date BETWEEN $start AND $end)
        AS rollup_rows,
    (
        SELECT coalesce(sum(CAST(date - DATE '2000-01-01' AS BIGINT)), 0) FROM insights
        WHERE date BETWEEN $start AND $end
    ) AS hourly_days,
    (
        SELECT coalesce(sum(CAST(hours AS BIGINT) * CAST(date - DATE '2000-01-01' AS BIGINT)), 0)
        FROM insights_daily WHERE date BETWEEN $start AND $end
    ) AS rollup_days;
