-- Per entity: the latest budget change and how many changes fell in the last hour. A change is
-- an applied or rolled-back call in the action log, or a call the ledger knows landed
-- ('applied') or may have landed ('started': a run died or the reply was lost) without an
-- action-log row for it (a run killed before it logged: warehouses made before each ledger
-- update was logged in the same transaction).
-- $plan_id's own steps are left out: re-checking a plan before (re)executing it must not
-- count the moves it already made against itself.
WITH logged AS (
    SELECT plan_id, entity_id, effective_at
    FROM action_log
    WHERE status IN ('applied', 'rolled_back') AND step = 'budget'
      AND plan_id IS DISTINCT FROM $plan_id
),
changes AS (
    SELECT entity_id, effective_at FROM logged
    UNION ALL
    SELECT l.entity_id, l.effective_at
    FROM execution_ledger AS l
    WHERE l.state IN ('applied', 'started') AND l.step = 'budget' AND l.effective_at IS NOT NULL
      AND l.plan_id IS DISTINCT FROM $plan_id
      AND NOT EXISTS (
          SELECT 1 FROM logged AS a
          WHERE a.plan_id = l.plan_id AND a.entity_id = l.entity_id
      )
)
SELECT
    entity_id,
    max(effective_at) AS changed_at,
    count(*) FILTER (WHERE effective_at > CAST($as_of AS TIMESTAMP) - INTERVAL 1 HOUR) AS changes_last_hour
FROM changes
GROUP BY entity_id;
