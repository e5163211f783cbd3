SELECT count(*) FROM action_log;
