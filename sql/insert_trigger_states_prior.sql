-- Keep trigger_states as they are now, before an advance (see create_trigger_states_prior).
INSERT INTO trigger_states_prior BY NAME SELECT * FROM trigger_states;
