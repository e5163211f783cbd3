-- A pull's chunks land here first (committed one by one, so memory stays that of one chunk),
-- then move into raw_insights in one transaction; made afresh with raw_insights' columns.
CREATE OR REPLACE TABLE raw_insights_pull AS SELECT * FROM raw_insights LIMIT 0;
