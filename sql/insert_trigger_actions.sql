INSERT INTO trigger_actions BY NAME SELECT * FROM staged_trigger_actions;
