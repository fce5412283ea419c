"""Analysis: error metrics, the held-out comparison of compressors, and the paper figures."""

from .evaluate import evaluate, markdown_table, write_results
from .metrics import energy_distance, generative_metrics, reconstruction_metrics

__all__ = ["evaluate", "markdown_table", "write_results", "energy_distance", "generative_metrics", "reconstruction_metrics"]
