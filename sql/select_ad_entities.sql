SELECT * EXCLUDE (pulled_at) FROM ad_entities ORDER BY entity_type, entity_id;
