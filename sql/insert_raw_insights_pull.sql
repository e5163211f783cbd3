INSERT INTO raw_insights_pull BY NAME SELECT * FROM staged_raw_insights;
