DELETE FROM learning_stages;
