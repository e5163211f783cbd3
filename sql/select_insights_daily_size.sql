-- Days and hourly rows the rollup holds.
SELECT count(DISTINCT date), coalesce(sum(hours), 0) FROM insights_daily;
