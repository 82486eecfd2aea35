"""Every list of names and every default the package, the CLI, the workflow and the figures share,
defined once here and imported everywhere (the config schema is tested equal to them). Standard
library only, so the CLI and the workflow read it at no cost."""

from __future__ import annotations

PREDICTORS = ("rnn", "mlp", "xgb", "gnn", "weighted")
"""The surrogate predictor families (``pnas_core.surrogate``)."""
DEFAULT_PREDICTORS = ("rnn", "mlp", "xgb")
"""The predictors fitted when none are named: the paper's three."""
SELECT_BY = (*PREDICTORS, "mean", "ucb")
"""What a selection ranks children by: one predictor, the mean of the fitted ones, or their UCB."""
DEFAULT_SELECT_BY = "mean"
COSTS = ("params", "mult_adds")
"""The cost columns a budget or a Pareto front reads."""
DEFAULT_PARETO_COST = "params"
FIT_ON = ("full", "all")
"""What the predictors fit on under early stopping: only records trained to the full budget, or all."""
DEFAULT_FIT_ON = "full"
FIGURE_STEMS = {
    "quality": "predictor_quality",
    "efficiency": "search_efficiency",
    "predictions": "predicted_vs_true",
    "distribution": "accuracy_by_size",
    "pareto": "accuracy_vs_size",
    "cell": "best_cell",
}
"""The file stem of each ``pnas figures`` kind (rules/common.smk spells it, tested equal)."""
RESULTS_DIR = "results"
"""Where the workflow writes (``results/<name>/``) and, by default, its result cache."""
DEFAULT_CACHE_DIR = f"{RESULTS_DIR}/cache"
"""The result cache's default folder (the config's ``cache_dir`` default, tested equal)."""
INIT_SCALES = ("quick", "paper")
"""`pnas init --scale` choices: the quick preset's search, or the paper's defaults."""
