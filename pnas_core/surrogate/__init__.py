"""Surrogate accuracy predictors (docs/method.md, "Surrogate predictors"): ``rnn``, ``mlp`` and ``gnn``
ensembles, the ``xgb`` baseline and the ``weighted`` combination of families.

Layer 3: imports the foundation, :mod:`pnas_core.space` and :mod:`pnas_core.io`; never the network
builder or training code. Importing this package loads torch and xgboost's
Python side, so CLI modules import it inside their command functions.
"""

from pnas_core.surrogate import gnn, mlp, rnn, weighted, xgb
from pnas_core.surrogate.base import PREDICTORS, CellsLike, Predictor, make_predictor
from pnas_core.surrogate.records import fit_data, read_fit_records
from pnas_core.surrogate.settings import SurrogateSettings

__all__ = [
    "PREDICTORS",
    "CellsLike",
    "Predictor",
    "SurrogateSettings",
    "fit_data",
    "gnn",
    "make_predictor",
    "mlp",
    "read_fit_records",
    "rnn",
    "weighted",
    "xgb",
]
