-- The baselines the entity_baselines asset last stored (see replace_entity_baselines).
SELECT * FROM entity_baselines ORDER BY as_of, adset_id;
