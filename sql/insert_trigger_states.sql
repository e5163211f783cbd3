INSERT INTO trigger_states BY NAME SELECT * FROM staged_trigger_states;
