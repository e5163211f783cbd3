-- A plan that cannot be completed: its unsent steps are never sent (a rollback follows).
-- 'started' rows stay: the call may have landed; the next run reads them back first.
UPDATE execution_ledger
SET state = 'abandoned', updated_at = $updated_at
WHERE plan_id = $plan_id AND state IN ('pending', 'failed', 'deferred');
