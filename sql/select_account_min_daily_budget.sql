-- Meta's minimum daily budget of an ad set billed on impressions, in the account currency.
SELECT max(min_daily_budget_imp) FROM account_minimum_budgets WHERE currency = $currency;
