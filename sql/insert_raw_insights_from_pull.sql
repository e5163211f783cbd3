INSERT INTO raw_insights BY NAME SELECT * FROM raw_insights_pull;
