INSERT INTO composite_scores BY NAME SELECT * FROM staged_composite_scores;
