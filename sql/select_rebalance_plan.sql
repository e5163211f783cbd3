SELECT * EXCLUDE (as_of, created_at) FROM rebalance_plans WHERE plan_id = $plan_id ORDER BY pool, entity_id;
