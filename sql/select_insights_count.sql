SELECT count(*) FROM insights;
