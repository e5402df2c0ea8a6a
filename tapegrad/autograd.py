"""`tg.autograd`: custom ops written as in PyTorch (`tg.autograd.Function`)."""

from tapegrad.engine.function import Function, FunctionCtx

__all__ = ["Function", "FunctionCtx"]
