-- The keyed ids (create_entity_keys) of keys 0 .. $top - 1, in key order: the ids of a result
-- whose keys are dense (most of 0 .. $top - 1 used). Keys are never negative; a row hand-made
-- with one is not read.
SELECT entity_key, entity_id FROM entity_keys
WHERE entity_key >= 0 AND entity_key < $top
ORDER BY entity_key;
