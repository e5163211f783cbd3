-- The end of the newest hour in the warehouse: the decision cycle's as_of.
SELECT max(ts) + INTERVAL 1 HOUR FROM insights;
