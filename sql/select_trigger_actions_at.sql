SELECT entity_id, action, pct, trigger, score, as_of FROM trigger_actions WHERE as_of = $as_of;
