SELECT entity_id, in_learning FROM learning_stages;
