INSERT INTO learning_stages BY NAME SELECT * FROM staged_learning_stages;
