-- A plan's rollback is decided (idempotent: the first reason stays).
INSERT INTO execution_rollbacks (plan_id, reason, run_id, started_at, ended_at)
VALUES ($plan_id, $reason, $run_id, $started_at, NULL)
ON CONFLICT (plan_id) DO NOTHING;
