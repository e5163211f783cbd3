SELECT plan_id, entity_id, step, state, attempts, updated_at, effective_at
FROM execution_ledger
WHERE plan_id = $plan_id;
