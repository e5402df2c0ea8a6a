"""SIMD vectors as a numba type, for kernels that must keep a register tile in registers.

numba has no vector type: a kernel's accumulators live in arrays, and LLVM loads and stores
them around every iteration of the loop that updates them. A `Vector` is one SIMD register's
worth of float32 or float64 lanes, an LLVM vector value; numba keeps local variables in
registers (mem2reg), so accumulators held in Vector variables stay there across a loop.

    w = lanes(x)                       # lanes per register for x's dtype (compile-time)
    a = load(x, i)                     # x.flat[i : i + w], any alignment
    a = fma(broadcast(c, a), b, a)     # a + c * b, lane by lane, one rounding
    store(y, i, a)                     # y.flat[i : i + w] = a

load and store take a C-contiguous array and a flat index and do no bounds checks: the caller
keeps i + w within the array. The register width is that of the code numba generates
(VECTOR_BYTES, see kernels.cpu.vector_bytes): 64 bytes with AVX-512, 32 with AVX2.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

from .cpu import vector_bytes

VECTOR_BYTES = vector_bytes()


class Vector(types.Type):
    """`lanes` values of a float dtype in one SIMD register."""

    def __init__(self, dtype: types.Float, lanes: int) -> None:
        self.dtype, self.lanes = dtype, lanes
        super().__init__(name=f"Vector({dtype}, {lanes})")


@register_model(Vector)
class _VectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type: Vector) -> None:
        element = dmm.lookup(fe_type.dtype).get_value_type()
        super().__init__(dmm, fe_type, ir.VectorType(element, fe_type.lanes))


def _vector_of(array: types.Array) -> Vector:
    if not isinstance(array.dtype, types.Float):
        raise TypeError(f"simd: float arrays only, got {array}")
    return Vector(array.dtype, VECTOR_BYTES // (array.dtype.bitwidth // 8))


def _contiguous(name: str, array: types.Array) -> None:
    if not isinstance(array, types.Array) or array.layout != "C":
        raise TypeError(f"simd.{name}: a C-contiguous array, indexed flat, got {array}")


def _address(context, builder, array_type, array, index):
    """Pointer to the flat element `index` of a C-contiguous array."""
    data = context.make_array(array_type)(context, builder, array).data
    return builder.gep(data, [index])


@intrinsic
def lanes(typingctx, array):
    """Lanes of one vector of array's dtype: a constant."""
    count = _vector_of(array).lanes

    def codegen(context, builder, signature, args):
        return context.get_constant(types.intp, count)

    return types.intp(array), codegen


@intrinsic
def load(typingctx, array, index):
    """The vector array.flat[index : index + lanes] (unaligned)."""
    _contiguous("load", array)
    vector = _vector_of(array)

    def codegen(context, builder, signature, args):
        address = _address(context, builder, signature.args[0], *args)
        pointer = builder.bitcast(address, context.get_value_type(vector).as_pointer())
        return builder.load(pointer, align=array.dtype.bitwidth // 8)

    return vector(array, types.intp), codegen


@intrinsic
def store(typingctx, array, index, value):
    """array.flat[index : index + lanes] = value (unaligned)."""
    _contiguous("store", array)
    if value != _vector_of(array):
        raise TypeError(f"simd.store: {value} does not fit {array}")

    def codegen(context, builder, signature, args):
        address = _address(context, builder, signature.args[0], args[0], args[1])
        pointer = builder.bitcast(address, args[2].type.as_pointer())
        builder.store(args[2], pointer, align=array.dtype.bitwidth // 8)
        return context.get_dummy_value()

    return types.none(array, types.intp, value), codegen


@intrinsic
def broadcast(typingctx, value, like):
    """A vector of like's type with `value` (cast to its dtype) in every lane."""
    if not isinstance(like, Vector):
        raise TypeError(f"simd.broadcast: the second argument must be a Vector, got {like}")

    def codegen(context, builder, signature, args):
        vector_type = context.get_value_type(like)
        scalar = context.cast(builder, args[0], signature.args[0], like.dtype)
        undefined = ir.Constant(vector_type, ir.Undefined)
        first = builder.insert_element(undefined, scalar, ir.Constant(ir.IntType(32), 0))
        zeros = ir.Constant(ir.VectorType(ir.IntType(32), like.lanes), [0] * like.lanes)
        return builder.shuffle_vector(first, undefined, zeros)

    return like(value, like), codegen


@intrinsic
def fma(typingctx, a, b, c):
    """a * b + c lane by lane, rounded once (LLVM's llvm.fma)."""
    if not (isinstance(a, Vector) and a == b == c):
        raise TypeError(f"simd.fma: three vectors of one type, got {a}, {b}, {c}")

    def codegen(context, builder, signature, args):
        vector_type = args[0].type
        name = f"llvm.fma.v{a.lanes}f{a.dtype.bitwidth}"
        function_type = ir.FunctionType(vector_type, [vector_type] * 3)
        function = cgutils.get_or_insert_function(builder.module, function_type, name)
        return builder.call(function, args)

    return a(a, b, c), codegen
