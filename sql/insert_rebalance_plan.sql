INSERT INTO rebalance_plans BY NAME SELECT * FROM staged_rebalance_plan;
