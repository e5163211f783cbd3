-- Calls whose outcome a dead run never recorded ('started'), of any plan, with the plan's
-- before/after values: the next execution reads each budget back to settle them.
SELECT l.plan_id, l.entity_id, l.step, l.effective_at,
       p.entity_type, p.pool, p.old_budget AS before_budget,
       CASE WHEN l.step = 'pause' THEN p.old_budget ELSE p.new_budget END AS after_budget
FROM execution_ledger AS l
JOIN rebalance_plans AS p USING (plan_id, entity_id)
WHERE l.state = 'started'
ORDER BY l.plan_id, l.entity_id, l.step;
