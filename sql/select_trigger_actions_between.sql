-- Trigger actions fired at evaluation times in ($start, $end], with the entity's pool.
SELECT t.entity_id, t.action, t.pct, t.trigger, t.score, t.as_of, e.pool
FROM trigger_actions AS t
LEFT JOIN ad_entities AS e USING (entity_id)
WHERE t.as_of > CAST($start AS TIMESTAMP) AND t.as_of <= CAST($end AS TIMESTAMP)
ORDER BY t.as_of, t.entity_id;
