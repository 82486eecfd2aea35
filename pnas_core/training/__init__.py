"""Training a cell: datasets and image folders, the network built from a cell (ops, network,
complexity, cost), the training loop, settings and records of one candidate, shards and the result
cache, checkpoints, the final network and its model files.

Layer 4: imports the foundation, :mod:`pnas_core.space` and :mod:`pnas_core.io`; never the
predictors, the search or the figures.
"""
