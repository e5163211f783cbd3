-- Per entity: the latest applied budget change and how many changes fell in the last hour.
-- $plan_id's own steps are left out: re-checking a plan before (re)executing it must not
-- count the moves it already made against itself.
SELECT
    entity_id,
    max(effective_at) AS changed_at,
    count(*) FILTER (WHERE effective_at > CAST($as_of AS TIMESTAMP) - INTERVAL 1 HOUR) AS changes_last_hour
FROM action_log
WHERE status = 'applied' AND step = 'budget' AND plan_id IS DISTINCT FROM $plan_id
GROUP BY entity_id;
