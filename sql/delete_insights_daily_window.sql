DELETE FROM insights_daily WHERE date BETWEEN $start AND $end;
