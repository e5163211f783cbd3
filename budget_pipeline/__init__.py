"""budget_pipeline: move Meta ads budget between campaigns on the advertiser's rules, safely."""

__version__ = "0.1.0"
