INSERT INTO execution_ledger (plan_id, entity_id, step, state, attempts, updated_at)
VALUES ($plan_id, $entity_id, $step, $state, 1, $updated_at)
ON CONFLICT (plan_id, entity_id, step) DO UPDATE SET
    state = excluded.state,
    attempts = execution_ledger.attempts + CASE WHEN excluded.state = 'started' THEN 1 ELSE 0 END,
    updated_at = excluded.updated_at;
