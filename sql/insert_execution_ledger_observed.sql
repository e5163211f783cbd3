INSERT INTO execution_ledger BY NAME
SELECT plan_id, entity_id, step, 'observed' AS state, 0 AS attempts, logged_at AS updated_at,
       effective_at
FROM staged_action_log
ON CONFLICT (plan_id, entity_id, step) DO NOTHING;
