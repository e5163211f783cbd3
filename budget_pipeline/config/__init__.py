"""Validated configuration: the pools file and the simulated-account scenario."""

from budget_pipeline.config.loading import ConfigError
from budget_pipeline.config.pools import PoolsConfig, load_pools

__all__ = ["ConfigError", "PoolsConfig", "load_pools"]
