DELETE FROM trigger_states;
