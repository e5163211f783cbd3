-- The version of the table definitions this warehouse was last brought up to (see
-- budget_pipeline/warehouse_schema.py); fails on a warehouse without warehouse_info yet.
SELECT value FROM warehouse_info WHERE key = 'schema_version';
