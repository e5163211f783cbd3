DELETE FROM raw_insights WHERE date BETWEEN $start AND $end;
