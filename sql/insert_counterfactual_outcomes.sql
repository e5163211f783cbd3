INSERT INTO counterfactual_outcomes BY NAME SELECT * FROM staged_counterfactual_outcomes;
