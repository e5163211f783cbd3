-- Every live step of a plan, before the first call: a plan cut short is known to be unfinished.
INSERT INTO execution_ledger BY NAME
SELECT plan_id, entity_id, step, 'pending' AS state, 0 AS attempts,
       CAST($updated_at AS TIMESTAMP) AS updated_at, NULL::TIMESTAMP AS effective_at
FROM staged_execution_steps
ON CONFLICT (plan_id, entity_id, step) DO NOTHING;
