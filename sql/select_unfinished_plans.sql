-- Live plans a run started and did not finish: steps still to send, or a rollback under way.
SELECT plan_id,
       count(*) FILTER (WHERE state IN ('pending', 'started', 'failed', 'deferred')) AS open_steps,
       list(DISTINCT p.pool ORDER BY p.pool) AS pools
FROM execution_ledger AS l
JOIN rebalance_plans AS p USING (plan_id, entity_id)
GROUP BY plan_id
HAVING bool_or(state IN ('pending', 'started', 'failed', 'deferred'))
    OR (bool_or(state = 'abandoned') AND bool_or(state = 'applied'))
ORDER BY plan_id;
