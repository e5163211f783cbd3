"""Closed-loop simulation: how much money a policy's decisions earn on the simulated account.

`budget-pipeline simulate` and `budget-pipeline bench decisions` run here (SPEC §11): each day
the simulated clock advances, the real cycle runs (the same assets, checks and gate, one Dagster
instance, in process) and its plan is applied through the real execution path, every pool live;
the value is the fully attributed purchase value of the simulated days, compared on the same
seeds with static budgets and with the oracle (the best rule-abiding schedule).
"""
