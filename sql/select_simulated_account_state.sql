SELECT state FROM simulated_account_state WHERE scenario = $scenario;
