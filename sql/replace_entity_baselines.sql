CREATE OR REPLACE TABLE entity_baselines AS SELECT * FROM staged_entity_baselines;
