INSERT INTO warehouse_info (key, value) VALUES ('schema_version', $version)
ON CONFLICT (key) DO UPDATE SET value = excluded.value;
