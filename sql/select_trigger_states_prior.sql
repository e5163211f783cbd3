SELECT entity_id, trigger, streak, condition_met, last_eval_at, last_fired_at, cooldown_until
FROM trigger_states_prior;
