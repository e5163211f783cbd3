INSERT INTO execution_attempts (plan_id, attempt, run_id, started_at)
SELECT $plan_id, coalesce(max(attempt), 0) + 1, $run_id, $started_at
FROM execution_attempts
WHERE plan_id = $plan_id
RETURNING attempt;
