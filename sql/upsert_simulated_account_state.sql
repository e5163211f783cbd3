INSERT OR REPLACE INTO simulated_account_state (scenario, state, updated_at)
VALUES ($scenario, $state, $updated_at);
