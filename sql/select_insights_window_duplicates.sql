-- Hourly rows of the window that share (adset_id, date, hour) with another: 0 after every
-- write (the guarantee the primary key used to give, checked inside the write's transaction).
SELECT count(*) - count(DISTINCT (adset_id, date, hour))
FROM insights
WHERE date BETWEEN $start AND $end;
