"""Analysis: error metrics, the held-out comparison of compressors, the results file, its tables and the paper figures."""

from .evaluate import evaluate
from .metrics import energy_distance, generative_metrics, reconstruction_metrics, rmse
from .results import read_results, write_results
from .tables import markdown_table

__all__ = ["evaluate", "markdown_table", "read_results", "write_results", "energy_distance", "generative_metrics",
           "reconstruction_metrics", "rmse"]
