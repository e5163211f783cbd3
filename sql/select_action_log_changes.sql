-- The budget and status changes the pipeline really made on the account (live calls that
-- landed, and their rollbacks), oldest first: the real budgets of each past day.
SELECT
    entity_id,
    effective_at AS at,
    CASE WHEN step = 'budget' THEN before_budget END AS budget_before,
    CASE WHEN step = 'budget' THEN after_budget END AS budget_after,
    CASE WHEN step = 'pause' THEN before_status END AS status_before,
    CASE WHEN step = 'pause' THEN after_status END AS status_after
FROM action_log
WHERE mode = 'live' AND status IN ('applied', 'rolled_back') AND step IN ('budget', 'pause')
ORDER BY effective_at, logged_at;
