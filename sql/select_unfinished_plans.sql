-- Live plans a run started and did not finish: steps still to send, or a rollback under way
-- (the execution_rollbacks marker, or in warehouses made before it an 'abandoned' step next
-- to an applied one). open_steps: steps still to send, plus moves still to set back.
WITH rolling AS (
    SELECT plan_id FROM execution_rollbacks WHERE ended_at IS NULL
)
SELECT plan_id,
       count(*) FILTER (
           WHERE state IN ('pending', 'started', 'failed', 'deferred')
              OR (state = 'applied' AND plan_id IN (SELECT plan_id FROM rolling))
       ) AS open_steps,
       list(DISTINCT p.pool ORDER BY p.pool) AS pools
FROM execution_ledger AS l
JOIN rebalance_plans AS p USING (plan_id, entity_id)
GROUP BY plan_id
HAVING bool_or(state IN ('pending', 'started', 'failed', 'deferred'))
    OR (bool_or(state = 'abandoned') AND bool_or(state = 'applied'))
    OR plan_id IN (SELECT plan_id FROM rolling)
ORDER BY plan_id;
