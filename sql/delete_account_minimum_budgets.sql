DELETE FROM account_minimum_budgets;
