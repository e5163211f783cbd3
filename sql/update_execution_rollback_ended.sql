-- Every move of the plan is set back (or was moved since by someone else): rollback finished.
UPDATE execution_rollbacks SET ended_at = $ended_at WHERE plan_id = $plan_id AND ended_at IS NULL;
