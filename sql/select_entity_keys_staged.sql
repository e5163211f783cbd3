-- The keyed ids (create_entity_keys) of the keys staged as `wanted_keys` (entity_key), in
-- key order: the ids a result uses when its keys are a sparse few of every id ever keyed
-- (an account's past ad sets keep their keys). The caller stages the frame under a name of
-- its own call and puts that name in place of `wanted_keys` (entity_keys._staged_keys).
SELECT k.entity_key, k.entity_id
FROM entity_keys AS k
SEMI JOIN wanted_keys AS w ON w.entity_key = k.entity_key
ORDER BY k.entity_key;
