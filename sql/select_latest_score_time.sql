SELECT max(as_of) FROM composite_scores;
