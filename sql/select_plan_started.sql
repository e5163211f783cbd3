-- Has any run started executing this plan (live steps in the ledger)?
SELECT count(*) > 0 FROM execution_ledger WHERE plan_id = $plan_id AND state <> 'observed';
