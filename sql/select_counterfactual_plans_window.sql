-- The stored would-have plans of the days $start .. $end (inclusive).
SELECT * EXCLUDE (created_at)
FROM counterfactual_plans
WHERE date BETWEEN $start AND $end
ORDER BY date, pool, entity_id;
