SELECT * FROM composite_scores WHERE list_contains($as_of, as_of) ORDER BY as_of, entity_id;
