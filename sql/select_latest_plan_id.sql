SELECT plan_id FROM rebalance_plans ORDER BY created_at DESC, plan_id LIMIT 1;
