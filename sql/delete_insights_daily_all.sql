DELETE FROM insights_daily;
