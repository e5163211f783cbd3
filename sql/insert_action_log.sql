INSERT INTO action_log BY NAME SELECT * FROM staged_action_log;
