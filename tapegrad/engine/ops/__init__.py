"""The primitives, grouped by kind.

Each module lists its ops in `__all__` and attaches the Tensor methods it defines; this package
gathers them, so a new op is written in one module and gradchecked in one test.
"""

from tapegrad.engine.ops import (
    activations,
    arithmetic,
    attention,
    casting,
    conv,
    indexing,
    joining,
    linalg,
    losses,
    normalization,
    pooling,
    reductions,
    selection,
    shape,
    sorting,
    unary,
)
from tapegrad.engine.ops.activations import *  # noqa: F403
from tapegrad.engine.ops.arithmetic import *  # noqa: F403
from tapegrad.engine.ops.attention import *  # noqa: F403
from tapegrad.engine.ops.casting import *  # noqa: F403
from tapegrad.engine.ops.conv import *  # noqa: F403
from tapegrad.engine.ops.indexing import *  # noqa: F403
from tapegrad.engine.ops.joining import *  # noqa: F403
from tapegrad.engine.ops.linalg import *  # noqa: F403
from tapegrad.engine.ops.losses import *  # noqa: F403
from tapegrad.engine.ops.normalization import *  # noqa: F403
from tapegrad.engine.ops.pooling import *  # noqa: F403
from tapegrad.engine.ops.reductions import *  # noqa: F403
from tapegrad.engine.ops.selection import *  # noqa: F403
from tapegrad.engine.ops.shape import *  # noqa: F403
from tapegrad.engine.ops.sorting import *  # noqa: F403
from tapegrad.engine.ops.unary import *  # noqa: F403

__all__ = [
    name
    for module in (
        activations,
        attention,
        arithmetic,
        casting,
        conv,
        indexing,
        joining,
        linalg,
        losses,
        normalization,
        pooling,
        reductions,
        selection,
        shape,
        sorting,
        unary,
    )
    for name in module.__all__
]
