INSERT INTO counterfactual_plans BY NAME SELECT * FROM staged_counterfactual_plans;
