"""Optimisers, learning-rate schedules and an exponential moving average of the weights.

PyTorch's names: `optim.SGD`, `Adam`, `AdamW`, `RMSprop`, `Adagrad`, `Muon` and the schedulers in
`optim.lr_scheduler`; tapegrad's own: the assignment's `Momentum`, schedule factors
(`triangular`, `cosine`, `piecewise_linear`) for `LRScheduler` (a LambdaLR), and weight
averaging.
"""

from tapegrad.optim import lr_scheduler
from tapegrad.optim.adagrad import Adagrad
from tapegrad.optim.adam import Adam, AdamW
from tapegrad.optim.muon import Muon, orthogonalise
from tapegrad.optim.optimizers import SGD, ExponentialMovingAverage, Momentum, Optimizer
from tapegrad.optim.rmsprop import RMSprop
from tapegrad.optim.schedules import LRScheduler, cosine, piecewise_linear, triangular

__all__ = [
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "ExponentialMovingAverage",
    "LRScheduler",
    "Momentum",
    "Muon",
    "Optimizer",
    "RMSprop",
    "cosine",
    "lr_scheduler",
    "orthogonalise",
    "piecewise_linear",
    "triangular",
]
