-- Per plan made in [$start, $end] (by its data clock) and pool: the budgets after the plan.
SELECT plan_id, as_of, pool, sum(new_budget) AS after, sum(old_budget) AS before
FROM rebalance_plans
WHERE as_of >= CAST($start AS TIMESTAMP) AND as_of <= CAST($end AS TIMESTAMP)
GROUP BY plan_id, as_of, pool
ORDER BY as_of, pool;
