DROP TABLE IF EXISTS raw_insights_pull;
