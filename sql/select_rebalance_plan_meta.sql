SELECT any_value(as_of), max(created_at) FROM rebalance_plans WHERE plan_id = $plan_id;
