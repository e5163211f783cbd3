-- Per entity: the latest budget change and how many changes fell in the last hour: applied
-- changes from the action log, and calls a dead run left 'started' (they may have landed).
-- $plan_id's own steps are left out: re-checking a plan before (re)executing it must not
-- count the moves it already made against itself.
WITH changes AS (
    SELECT entity_id, effective_at
    FROM action_log
    WHERE status IN ('applied', 'rolled_back') AND step = 'budget'
      AND plan_id IS DISTINCT FROM $plan_id
    UNION ALL
    SELECT entity_id, effective_at
    FROM execution_ledger
    WHERE state = 'started' AND step = 'budget' AND effective_at IS NOT NULL
      AND plan_id IS DISTINCT FROM $plan_id
)
SELECT
    entity_id,
    max(effective_at) AS changed_at,
    count(*) FILTER (WHERE effective_at > CAST($as_of AS TIMESTAMP) - INTERVAL 1 HOUR) AS changes_last_hour
FROM changes
GROUP BY entity_id;
