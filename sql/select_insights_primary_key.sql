-- Warehouses made before issue 11 kept a primary key on insights (replacing one window took
-- 17.7 s at 10k ad sets with it, 0.43 s without); returns a row while it is still there.
SELECT 1 FROM duckdb_constraints()
WHERE table_name = 'insights' AND constraint_type = 'PRIMARY KEY';
