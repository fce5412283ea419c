"""Analysis: error metrics, the held-out comparison of compressors, the results file, its tables and the paper figures.

Importing this package loads none of its modules (the registry of names
and the tables load without torch); import the one you need, e.g.
``from dustvae.analysis.evaluate import evaluate``.
"""
