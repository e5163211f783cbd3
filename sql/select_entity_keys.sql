-- Every keyed id (create_entity_keys), in key order: row i is the id of key i while the keys
-- run 0, 1, ... without a gap (insert_entity_keys_window assigns them so).
SELECT entity_key, entity_id FROM entity_keys ORDER BY entity_key;
