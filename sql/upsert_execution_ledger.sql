INSERT INTO execution_ledger (plan_id, entity_id, step, state, attempts, updated_at, effective_at)
VALUES ($plan_id, $entity_id, $step, $state, CASE WHEN $state = 'started' THEN 1 ELSE 0 END,
        $updated_at, $effective_at)
ON CONFLICT (plan_id, entity_id, step) DO UPDATE SET
    state = excluded.state,
    attempts = execution_ledger.attempts + CASE WHEN excluded.state = 'started' THEN 1 ELSE 0 END,
    updated_at = excluded.updated_at,
    effective_at = coalesce(excluded.effective_at, execution_ledger.effective_at);
