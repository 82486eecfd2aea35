"""Surrogate accuracy predictors (docs/method.md, "Surrogate predictors"): ``rnn`` and ``mlp`` ensembles and the ``xgb`` baseline.

Never imports the network builder or training code. Importing this package loads torch and xgboost's
Python side, so CLI modules import it inside their command functions.
"""

from pnas_core.surrogate import mlp, rnn, xgb
from pnas_core.surrogate.base import PREDICTORS, CellsLike, Predictor, make_predictor
from pnas_core.surrogate.records import fit_data, read_fit_records
from pnas_core.surrogate.settings import SurrogateSettings

__all__ = [
    "PREDICTORS",
    "CellsLike",
    "Predictor",
    "SurrogateSettings",
    "fit_data",
    "make_predictor",
    "mlp",
    "read_fit_records",
    "rnn",
    "xgb",
]
