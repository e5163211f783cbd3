-- Was a rollback of this plan decided, and is it still under way (not every move set back)?
-- A warehouse made before the execution_rollbacks marker shows a decided rollback by an
-- 'abandoned' step.
WITH marker AS (SELECT ended_at FROM execution_rollbacks WHERE plan_id = $plan_id),
steps AS (SELECT state FROM execution_ledger WHERE plan_id = $plan_id)
SELECT
    EXISTS (SELECT 1 FROM marker) OR EXISTS (SELECT 1 FROM steps WHERE state = 'abandoned')
        AS decided,
    EXISTS (SELECT 1 FROM marker WHERE ended_at IS NULL)
    OR (
        NOT EXISTS (SELECT 1 FROM marker)
        AND EXISTS (SELECT 1 FROM steps WHERE state = 'abandoned')
        AND EXISTS (SELECT 1 FROM steps WHERE state IN ('applied', 'started'))
    ) AS under_way;
