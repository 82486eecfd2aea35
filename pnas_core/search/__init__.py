"""The search: the beam step (expand, score, select), selection rules, early stopping inside a level,
the in-process progressive search, benchmark tables and the strategies replayed on them, the
replicated searches and their comparison, predictor quality and the search summary.

Layer 5: may import every layer below (foundation, space, io, surrogate, training); never the figures
or the CLI.
"""
