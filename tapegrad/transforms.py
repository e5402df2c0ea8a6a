"""`tapegrad.transforms`: the image transforms of `tapegrad.data.transforms`, by a shorter path."""

from tapegrad.data.transforms import *  # noqa: F403
from tapegrad.data.transforms import __all__  # noqa: F401
