DELETE FROM trigger_states_prior;
