DELETE FROM rebalance_plans WHERE plan_id = $plan_id;
