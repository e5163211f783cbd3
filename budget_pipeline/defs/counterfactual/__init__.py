"""Counterfactual backfills: would-have plans and their outcomes on past days (SPEC §9)."""
