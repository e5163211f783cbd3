"""Rollback of an executed plan, launched by an operator (UI or `budget-pipeline rollback`)."""
