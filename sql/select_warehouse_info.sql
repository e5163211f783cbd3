-- One fact about this warehouse by its key (see create_warehouse_info).
SELECT value FROM warehouse_info WHERE key = $key;
