INSERT INTO raw_insights BY NAME SELECT * FROM staged_raw_insights;
