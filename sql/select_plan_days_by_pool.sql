-- Per pool: on how many distinct days (of the data clock) a plan was made for it, since when.
SELECT pool, count(DISTINCT CAST(as_of AS DATE)) AS plan_days, min(as_of) AS first_plan
FROM rebalance_plans
GROUP BY pool
ORDER BY pool;
