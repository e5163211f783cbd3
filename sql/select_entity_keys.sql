-- The keyed ids (create_entity_keys) of keys below $top, in key order: the ids of a result
-- whose keys are dense (most of 0 .. $top - 1 used).
SELECT entity_key, entity_id FROM entity_keys WHERE entity_key < $top ORDER BY entity_key;
