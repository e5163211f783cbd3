-- How many hourly rows the warehouse holds before $as_of, and the first hour: a backfill of
-- earlier history (or hours that arrived late) changes them; restated conversions do not.
SELECT count(*), min(ts) FROM insights WHERE ts < $as_of;
