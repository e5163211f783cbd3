-- Budget entries of the action log (applied or observed) with the account's clock in
-- ($start, $end].
SELECT plan_id, entity_id, pool, mode, status, before_budget, after_budget, effective_at
FROM action_log
WHERE step = 'budget' AND status IN ('applied', 'observed')
  AND effective_at > CAST($start AS TIMESTAMP) AND effective_at <= CAST($end AS TIMESTAMP)
ORDER BY effective_at, entity_id;
