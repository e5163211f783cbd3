INSERT INTO account_minimum_budgets BY NAME SELECT * FROM staged_minimum_budgets;
