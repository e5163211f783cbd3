"""The Meta Marketing API as an ad source: httpx client, error classes, parsing and schemas.

``MetaApiSource.from_env()`` returns a configured source, or None when ``META_ACCESS_TOKEN`` is
unset (the pipeline then runs on the simulated account).
"""

from budget_pipeline.sources.meta_api.client import (
    DEFAULT_API_VERSION,
    DEFAULT_GRAPH_URL,
    GraphApiClient,
    MetaApiSettings,
    MetaApiSource,
    PacePolicy,
    Page,
    RetryPolicy,
    Usage,
)
from budget_pipeline.sources.meta_api.errors import (
    AsyncReportError,
    AuthError,
    BudgetEditLimitError,
    ConfigError,
    GraphApiError,
    InvalidParameterError,
    MetaApiError,
    NetworkError,
    PayloadError,
    PermanentGraphApiError,
    PermissionDeniedError,
    QueryTooLargeError,
    ServerError,
    ThrottlingError,
    TransientGraphApiError,
)
from budget_pipeline.sources.meta_api.parsing import ConversionSpec

__all__ = [
    "DEFAULT_API_VERSION",
    "DEFAULT_GRAPH_URL",
    "AsyncReportError",
    "AuthError",
    "BudgetEditLimitError",
    "ConfigError",
    "ConversionSpec",
    "GraphApiClient",
    "GraphApiError",
    "InvalidParameterError",
    "MetaApiError",
    "MetaApiSettings",
    "MetaApiSource",
    "NetworkError",
    "PacePolicy",
    "Page",
    "PayloadError",
    "PermanentGraphApiError",
    "PermissionDeniedError",
    "QueryTooLargeError",
    "RetryPolicy",
    "ServerError",
    "ThrottlingError",
    "TransientGraphApiError",
    "Usage",
]
