"""A Graph API double: the simulated account served over real HTTP with Meta's shapes.

Start one in tests with :func:`serve_double`, or from a shell::

    python -m budget_pipeline.sources.graph_double --port 8765

then point the pipeline at it with ``META_GRAPH_URL=http://127.0.0.1:8765``,
``META_ACCESS_TOKEN=double-token`` and ``META_AD_ACCOUNT_ID`` as printed.
"""

from budget_pipeline.sources.graph_double.app import FaultQueue, GraphDouble
from budget_pipeline.sources.graph_double.server import (
    DEFAULT_TOKEN,
    DoubleHandle,
    serve_double,
)

__all__ = ["DEFAULT_TOKEN", "DoubleHandle", "FaultQueue", "GraphDouble", "serve_double"]
