DELETE FROM counterfactual_outcomes WHERE date BETWEEN $start AND $end;
