-- The baselines the entity_baselines asset last stored (see replace_entity_baselines), in
-- storage order: the caller sorts them (cheaper in polars than ORDER BY here).
SELECT * FROM entity_baselines;
