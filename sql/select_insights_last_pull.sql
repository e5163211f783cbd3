-- When the hours before $as_of were last pulled: every pull writes its rows' pulled_at, so a
-- re-pull restating them (late conversions, a corrected day) moves it where the coverage
-- (select_insights_coverage: rows and first hour) does not.
SELECT max(pulled_at) FROM insights WHERE ts < $as_of;
