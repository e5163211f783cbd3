DELETE FROM insights WHERE date BETWEEN $start AND $end;
