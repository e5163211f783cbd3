-- Whether this warehouse has its warehouse_info table (a bare test table may not).
SELECT count(*) > 0 FROM duckdb_tables() WHERE table_name = 'warehouse_info' AND schema_name = current_schema();
