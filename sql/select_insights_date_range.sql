SELECT min(date), max(date) FROM insights;
