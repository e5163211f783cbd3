DELETE FROM counterfactual_plans WHERE date BETWEEN $start AND $end;
