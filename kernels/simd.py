"""Vectors held in registers: the pieces of the register-blocked products in `affine` and `twolayer`.

A product such as a1 = x @ W1 is limited by how often each number is loaded. LLVM vectorises a
loop over a row of W (out[r, :] += x[r, i] * W[i, :]), but the row of `out` then goes through
memory on every pass, and a row of 50 floats ends in a scalar remainder of 2 (measured here,
x @ W1 for 1000 dense float32 rows: 22 GFMA/s, NumPy's BLAS 45). Numba has no vector type to
keep a tile of `out` in registers across the whole sum; this module adds one:

    acc_q = b[j0 : j0 + L]                       for the rows q of a block, one vector each
    acc_q = fma(x[r0 + q, k], W[k, j0 : j0 + L], acc_q)      for k = 0, 1, ..., D - 1
    out[r0 + q, j0 : j0 + L] = acc_q

Each W[k, j0 : j0 + L] is loaded once for every row of the block and each `acc_q` stays in a
register: the loop is bound by FMA throughput (the same product: 45 GFMA/s in float32, 25 in
float64, where NumPy's BLAS does 45 and 19).

- A vector is `lanes(a)` consecutive elements of a row: 64 bytes (8 float64, 16 float32) where the
  CPU has AVX-512, else 32 bytes. LLVM splits a vector wider than the hardware's into several.
- `vload_part` / `vstore_part` touch only the first n lanes (masked loads and stores), for the
  last, partial vector of a row: a row of 50 floats is 6 vectors and 2 lanes of float64.
- `nonzero_bits(v)` is the lanes of v that are non-zero, as bits of an integer (one compare);
  `nonzero_word(a, r, c)` is that for 64 elements of a row at once.
- `vload_quarter` loads a quarter-width vector (16 bytes), for a row's last few elements; `vstore`
  stores it.
- `vload_quarter_twice`, `vfma_pair`, `vstore_low` / `vstore_high`: a row's last few elements for
  two rows in one half-width vector, each row's value in its own half: a block of eight rows
  then takes four 32-byte FMAs for its short end where quarter-width vectors take eight 16-byte
  ones (both cost an FMA unit a cycle each on AMD Zen 4).
- `vfma(s, v, acc)` is acc + s * v rounded once, lane by lane: the sums keep the order the kernel
  writes, so results do not depend on the vector width's choice of instructions beyond FMA
  contraction, nor on the thread count.
- `transpose_tile` transposes a lanes x lanes tile in registers; `row_dots` gives a vector of
  g W^T from W's rows, dot products summed lane by lane and then across the lanes, for the few
  rows where transposing W would cost more than the product (see `affine.affine_backward`).

Under NUMBA_DISABLE_JIT=1 the same functions work on NumPy arrays of `lanes(a)` elements (unfused
multiply-add), so the kernels run as plain Python.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic, models, overload, register_model

from kernels._jit import jit


def _vector_bytes():
    """64 where the host has AVX-512 (one cache line per vector), 32 elsewhere (AVX2, NEON pairs)."""
    try:
        import llvmlite.binding as llvm

        return 64 if llvm.get_host_cpu_features().get("avx512f") else 32
    except Exception:  # a host LLVM cannot describe: the narrower vector is correct everywhere
        return 32


VECTOR_BYTES = _vector_bytes()


def _inline_assembly():
    """Let LLVM assemble inline assembly (vfma_pair's blend, on x86 with AVX-512 only). numba does
    not set up LLVM's assembler parser, and the machine code of every kernel that links one of
    vfma_pair's callers is made in this process, even when that caller came from the cache."""
    if VECTOR_BYTES == 64:
        import llvmlite.binding as llvm

        llvm.initialize_native_asmparser()
        return True
    return False


INLINE_ASM = _inline_assembly()


class Vector(types.Type):
    """numba type of a vector of `lanes` elements of `dtype`, an LLVM <lanes x dtype> value."""

    def __init__(self, dtype, lanes):
        self.dtype = dtype
        self.lanes = lanes
        super().__init__(name=f"Vector({dtype}, {lanes})")


@register_model(Vector)
class _VectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        element = dmm.lookup(fe_type.dtype).get_value_type()
        super().__init__(dmm, fe_type, ir.VectorType(element, fe_type.lanes))


def _vector_of(array_type):
    return Vector(array_type.dtype, VECTOR_BYTES * 8 // array_type.dtype.bitwidth)


def _pointer(context, builder, signature, args, vector):
    """Address of a[r, c] as a pointer to the vector type."""
    array_type, row_type, col_type = signature.args[:3]
    array = context.make_array(array_type)(context, builder, args[0])
    r = context.cast(builder, args[1], row_type, types.intp)
    c = context.cast(builder, args[2], col_type, types.intp)
    p = cgutils.get_item_pointer(context, builder, array_type, array, [r, c], wraparound=False)
    return builder.bitcast(p, context.get_value_type(vector).as_pointer())


def _lane_mask(context, builder, vector, n, n_type):
    """<lanes x i1>: lane l < n."""
    count = context.cast(builder, n, n_type, types.int64)
    index_type = ir.VectorType(ir.IntType(64), vector.lanes)
    lanes = ir.Constant(index_type, [ir.Constant(ir.IntType(64), i) for i in range(vector.lanes)])
    splat = builder.insert_element(ir.Constant(index_type, None), count, ir.Constant(ir.IntType(32), 0))
    splat = builder.shuffle_vector(splat, splat,
                                   ir.Constant(ir.VectorType(ir.IntType(32), vector.lanes), [0] * vector.lanes))
    return builder.icmp_signed("<", lanes, splat)


def _mangle(t):
    """The suffix LLVM's overloaded intrinsics take for type t (llvmlite knows it for scalars only)."""
    if isinstance(t, ir.VectorType):
        return f"v{t.count}{_mangle(t.element)}"
    if isinstance(t, ir.PointerType):
        pointee = getattr(t, "pointee", None)
        return f"p{t.addrspace}" + ("" if pointee is None or getattr(t, "is_opaque", False)
                                    else _mangle(pointee))
    return t.intrinsic_name


def _declare(builder, name, types_, fnty):
    return cgutils.get_or_insert_function(builder.module, fnty,
                                          ".".join([name] + [_mangle(t) for t in types_]))


def _align(vector):
    return vector.dtype.bitwidth // 8


def _masked_load(builder, pointer, value_type, mask, align):
    fn = _declare(builder, "llvm.masked.load", [value_type, pointer.type],
                  ir.FunctionType(value_type, [pointer.type, ir.IntType(32), mask.type, value_type]))
    return builder.call(fn, [pointer, ir.Constant(ir.IntType(32), align), mask, ir.Constant(value_type, None)])


def _masked_store(builder, value, pointer, mask, align):
    fn = _declare(builder, "llvm.masked.store", [value.type, pointer.type],
                  ir.FunctionType(ir.VoidType(), [value.type, pointer.type, ir.IntType(32), mask.type]))
    builder.call(fn, [value, pointer, ir.Constant(ir.IntType(32), align), mask])


def _whole_load(vector):
    """Codegen of (a, r, c) -> `vector` from a[r, c], every lane."""

    def codegen(context, builder, signature, args):
        return builder.load(_pointer(context, builder, signature, args, vector), align=_align(vector))

    return codegen


@intrinsic
def _load(typingctx, a, r, c):
    vector = _vector_of(a)
    return vector(a, r, c), _whole_load(vector)


def _part_load(vector):
    """Codegen of (a, r, c, n) -> the first n lanes of `vector` from a[r, c], zeros after them."""

    def codegen(context, builder, signature, args):
        pointer = _pointer(context, builder, signature, args, vector)
        mask = _lane_mask(context, builder, vector, args[3], signature.args[3])
        return _masked_load(builder, pointer, context.get_value_type(vector), mask, _align(vector))

    return codegen


@intrinsic
def _load_part(typingctx, a, r, c, n):
    vector = _vector_of(a)
    return vector(a, r, c, n), _part_load(vector)


@intrinsic
def _load_part_quarter(typingctx, a, r, c, n):
    full = _vector_of(a)
    vector = Vector(full.dtype, full.lanes // 4)
    return vector(a, r, c, n), _part_load(vector)


@intrinsic
def _load_quarter(typingctx, a, r, c):
    full = _vector_of(a)
    vector = Vector(full.dtype, full.lanes // 4)
    return vector(a, r, c), _whole_load(vector)


@intrinsic
def _store(typingctx, a, r, c, v):
    if not isinstance(v, Vector) or v.dtype != a.dtype or v.lanes > _vector_of(a).lanes:
        return None
    vector = v

    def codegen(context, builder, signature, args):
        builder.store(args[3], _pointer(context, builder, signature, args, vector), align=_align(vector))
        return context.get_dummy_value()

    return types.void(a, r, c, v), codegen


@intrinsic
def _store_part(typingctx, a, r, c, v, n):
    if not isinstance(v, Vector) or v.dtype != a.dtype or v.lanes > _vector_of(a).lanes:
        return None
    vector = v

    def codegen(context, builder, signature, args):
        pointer = _pointer(context, builder, signature, args, vector)
        mask = _lane_mask(context, builder, vector, args[4], signature.args[4])
        _masked_store(builder, args[3], pointer, mask, _align(vector))
        return context.get_dummy_value()

    return types.void(a, r, c, v, n), codegen


@intrinsic
def _fma(typingctx, s, v, acc):
    if not isinstance(v, Vector) or acc != v or s != v.dtype:
        return None

    def codegen(context, builder, signature, args):
        value_type = args[1].type
        splat = builder.insert_element(ir.Constant(value_type, None), args[0], ir.Constant(ir.IntType(32), 0))
        splat = builder.shuffle_vector(splat, splat,
                                       ir.Constant(ir.VectorType(ir.IntType(32), v.lanes), [0] * v.lanes))
        fn = _declare(builder, "llvm.fma", [value_type], ir.FunctionType(value_type, [value_type] * 3))
        return builder.call(fn, [splat, args[1], args[2]])

    return acc(s, v, acc), codegen


def _transposed(builder, rows, lanes):
    """The lanes x lanes tile rows (vectors) transposed: log2(lanes) rounds of two-vector
    shuffles, each swapping the off-diagonal s x s blocks of every 2s x 2s block."""
    rows = list(rows)
    s = 1
    while s < lanes:
        low = [l if l & s == 0 else lanes + l - s for l in range(lanes)]
        high = [l + s if l & s == 0 else lanes + l for l in range(lanes)]
        for i in range(lanes):
            if i & s == 0:
                u, v = rows[i], rows[i + s]
                rows[i] = builder.shuffle_vector(u, v, ir.Constant(ir.VectorType(ir.IntType(32), lanes), low))
                rows[i + s] = builder.shuffle_vector(u, v, ir.Constant(ir.VectorType(ir.IntType(32), lanes), high))
        s *= 2
    return rows


@intrinsic
def _transpose_tile(typingctx, a, r0, c0, out):
    vector = _vector_of(a)
    if not isinstance(out, types.Array) or out.dtype != a.dtype or a.ndim != 2 or out.ndim != 2:
        return None

    def codegen(context, builder, signature, args):
        a_type, r_type, c_type, out_type = signature.args
        lanes = vector.lanes
        i64 = ir.IntType(64)
        src = context.make_array(a_type)(context, builder, args[0])
        dst = context.make_array(out_type)(context, builder, args[3])
        n_rows, n_cols = cgutils.unpack_tuple(builder, src.shape, 2)
        r0 = context.cast(builder, args[1], r_type, types.intp)
        c0 = context.cast(builder, args[2], c_type, types.intp)
        value_type = context.get_value_type(vector)
        align = _align(vector)
        load_mask = _lane_mask(context, builder, vector, builder.sub(n_cols, c0), types.intp)
        last = builder.sub(n_rows, ir.Constant(i64, 1))
        tile = []
        for q in range(lanes):  # rows past the end read the last row again; their lanes are not stored
            r = builder.add(r0, ir.Constant(i64, q))
            r = builder.select(builder.icmp_signed("<", r, n_rows), r, last)
            p = cgutils.get_item_pointer(context, builder, a_type, src, [r, c0], wraparound=False)
            tile.append(_masked_load(builder, builder.bitcast(p, value_type.as_pointer()), value_type,
                                     load_mask, align))
        out_rows, out_cols = cgutils.unpack_tuple(builder, dst.shape, 2)
        width = builder.select(builder.icmp_signed("<", n_rows, out_cols), n_rows, out_cols)
        store_mask = _lane_mask(context, builder, vector, builder.sub(width, r0), types.intp)
        height = builder.select(builder.icmp_signed("<", n_cols, out_rows), n_cols, out_rows)
        for q, row in enumerate(_transposed(builder, tile, lanes)):
            j = builder.add(c0, ir.Constant(i64, q))
            with builder.if_then(builder.icmp_signed("<", j, height)):
                p = cgutils.get_item_pointer(context, builder, out_type, dst, [j, r0], wraparound=False)
                _masked_store(builder, row, builder.bitcast(p, value_type.as_pointer()), store_mask, align)
        return context.get_dummy_value()

    return types.void(a, r0, c0, out), codegen


def _lane_sums(builder, vectors, lanes):
    """Vector q of `vectors` (lanes of them) summed over its lanes, into lane q of one vector:
    log2(lanes) rounds of pairwise adds. A round takes two vectors whose lanes hold partial sums
    in runs of s and shuffles them into two whose lane-by-lane sum holds the sums of runs of 2 s:
    the first round adds lanes 0 + 1, 2 + 3, ..., the last the two halves."""
    vectors = list(vectors)
    mask_type = ir.VectorType(ir.IntType(32), lanes)
    s = 1
    while len(vectors) > 1:
        low = [l if (l // s) % 2 == 0 else lanes + l - s for l in range(lanes)]
        high = [l + s for l in low]
        paired = []
        for u, v in zip(vectors[0::2], vectors[1::2]):
            paired.append(builder.fadd(builder.shuffle_vector(u, v, ir.Constant(mask_type, low)),
                                       builder.shuffle_vector(u, v, ir.Constant(mask_type, high))))
        vectors = paired
        s *= 2
    return vectors[0]


def _dot_rows(vector):
    """Rows of g that row_dots takes at once: as many as keep their lanes accumulators each in half
    the vector registers (32 with AVX-512, 16 with AVX2): 2 for float64, 1 for float32. Measured,
    dout W^T of 10 float64 rows by 784 x 50: 30 us one row at a time, 19 us two, 22 us three."""
    registers = 32 if VECTOR_BYTES == 64 else 16
    return max(1, registers // 2 // vector.lanes)


@intrinsic
def _row_dots(typingctx, W, k0, g, r, out):
    vector = _vector_of(W)
    arrays = (W, g, out)
    if not all(isinstance(a, types.Array) and a.ndim == 2 and a.dtype == W.dtype for a in arrays):
        return None
    count = _dot_rows(vector)

    def codegen(context, builder, signature, args):
        w_type, k_type, g_type, r_type, out_type = signature.args
        lanes = vector.lanes
        value_type = context.get_value_type(vector)
        align = _align(vector)
        i64 = ir.IntType(64)
        w_array = context.make_array(w_type)(context, builder, args[0])
        g_array = context.make_array(g_type)(context, builder, args[2])
        out_array = context.make_array(out_type)(context, builder, args[4])
        d, h = cgutils.unpack_tuple(builder, w_array.shape, 2)
        n, out_cols = cgutils.unpack_tuple(builder, out_array.shape, 2)
        k0 = context.cast(builder, args[1], k_type, types.intp)
        r = context.cast(builder, args[3], r_type, types.intp)
        one = ir.Constant(i64, 1)

        def clamped(start, q, end):  # start + q, or the last index before end past it
            i = builder.add(start, ir.Constant(i64, q))
            return builder.select(builder.icmp_signed("<", i, end), i, builder.sub(end, one))

        ks = [clamped(k0, q, d) for q in range(lanes)]
        rs = [clamped(r, i, n) for i in range(count)]
        sums = [[cgutils.alloca_once_value(builder, ir.Constant(value_type, None)) for _ in ks] for _ in rs]
        fma = _declare(builder, "llvm.fma", [value_type], ir.FunctionType(value_type, [value_type] * 3))

        def pointer(a_type, a, i, j):
            p = cgutils.get_item_pointer(context, builder, a_type, a, [i, j], wraparound=False)
            return builder.bitcast(p, value_type.as_pointer())

        def step(j, load):  # one vector of columns from j: every W row's into every g row's sums
            gs = [load(pointer(g_type, g_array, ri, j)) for ri in rs]
            for q, k in enumerate(ks):
                w = load(pointer(w_type, w_array, k, j))
                for acc, gv in zip(sums, gs):
                    builder.store(builder.call(fma, [w, gv, builder.load(acc[q])]), acc[q])

        whole = builder.sdiv(h, ir.Constant(i64, lanes))
        with cgutils.for_range(builder, whole) as loop:
            step(builder.mul(loop.index, ir.Constant(i64, lanes)), lambda p: builder.load(p, align=align))
        j = builder.mul(whole, ir.Constant(i64, lanes))
        rest = builder.sub(h, j)
        with builder.if_then(builder.icmp_signed(">", rest, ir.Constant(i64, 0))):
            mask = _lane_mask(context, builder, vector, rest, types.intp)
            step(j, lambda p: _masked_load(builder, p, value_type, mask, align))
        width = builder.select(builder.icmp_signed("<", d, out_cols), d, out_cols)
        store_mask = _lane_mask(context, builder, vector, builder.sub(width, k0), types.intp)
        for i, acc in enumerate(sums):
            row = builder.add(r, ir.Constant(i64, i))
            with builder.if_then(builder.icmp_signed("<", row, n)):
                total = _lane_sums(builder, [builder.load(a) for a in acc], lanes)
                _masked_store(builder, total, pointer(out_type, out_array, row, k0), store_mask, align)
        return context.get_dummy_value()

    return types.void(W, k0, g, r, out), codegen


@intrinsic
def _add(typingctx, u, v):
    if not isinstance(u, Vector) or v != u:
        return None

    def codegen(context, builder, signature, args):
        return builder.fadd(args[0], args[1])

    return u(u, v), codegen


@intrinsic
def _zero(typingctx, a):
    vector = _vector_of(a)

    def codegen(context, builder, signature, args):
        return ir.Constant(context.get_value_type(vector), None)

    return vector(a), codegen


@intrinsic
def _nonzero_bits(typingctx, v):
    if not isinstance(v, Vector):
        return None

    def codegen(context, builder, signature, args):
        # une: NaN counts as non-zero, as x != 0 does in NumPy. One compare into a mask register.
        flags = builder.fcmp_unordered("!=", args[0], ir.Constant(args[0].type, None))
        return builder.zext(builder.bitcast(flags, ir.IntType(v.lanes)), ir.IntType(64))

    return types.uint64(v), codegen


@intrinsic
def _nonzero_word(typingctx, a, r, c):
    if not isinstance(a, types.Array) or a.ndim != 2 or not isinstance(a.dtype, types.Float):
        return None
    vector = Vector(a.dtype, 64)
    load = _whole_load(vector)

    def codegen(context, builder, signature, args):
        # One <64 x float> compare: LLVM loads it as whole vectors and joins their mask registers
        # (kunpck) into the 64 bits, one move to an integer register a word.
        value = load(context, builder, signature, args)
        flags = builder.fcmp_unordered("!=", value, ir.Constant(value.type, None))
        return builder.bitcast(flags, ir.IntType(64))

    return types.uint64(a, r, c), codegen


def _half_of(array_type):
    full = _vector_of(array_type)
    return Vector(full.dtype, full.lanes // 2)


@intrinsic
def _load_quarter_twice(typingctx, a, r, c):
    full = _vector_of(a)
    quarter = Vector(full.dtype, full.lanes // 4)
    half = _half_of(a)
    load = _whole_load(quarter)

    def codegen(context, builder, signature, args):
        q = load(context, builder, signature, args)
        twice = list(range(quarter.lanes)) * 2
        return builder.shuffle_vector(q, q, ir.Constant(ir.VectorType(ir.IntType(32), half.lanes), twice))

    return half(a, r, c), codegen


@intrinsic
def _fma_pair(typingctx, s0, s1, v, acc):
    if not isinstance(v, Vector) or acc != v or s0 != v.dtype or s1 != v.dtype:
        return None

    def codegen(context, builder, signature, args):
        value_type = args[2].type
        i32 = ir.IntType(32)
        half = v.lanes // 2
        mask = ir.VectorType(i32, v.lanes)

        def splat_of(s):
            one = builder.insert_element(ir.Constant(value_type, None), s, ir.Constant(i32, 0))
            return builder.shuffle_vector(one, one, ir.Constant(mask, [0] * v.lanes))

        low, high = splat_of(args[0]), splat_of(args[1])
        if INLINE_ASM and v.dtype in (types.float32, types.float64) and v.lanes * v.dtype.bitwidth == 256:
            # One blend of the two splats. Written as a shuffle or a select, LLVM turns the pair
            # into two shuffles (vinsertf128 and vshufps, or vshufps and vpermpd): x W + b for
            # 1000 dense float32 rows by 784 x 50 took 950 us so, 880 us with the blend.
            # "x": vblendps has no encoding for the registers past 15 that AVX-512 adds.
            op = "vblendps" if v.dtype == types.float32 else "vblendpd"
            blend = ir.InlineAsm(ir.FunctionType(value_type, [value_type, value_type]),
                                 f"{op} $${(1 << v.lanes) - (1 << half)}, $2, $1, $0", "=x,x,x")
            pair = builder.call(blend, [low, high])
        else:
            pair = builder.select(ir.Constant(ir.VectorType(ir.IntType(1), v.lanes),
                                              [1] * half + [0] * half), low, high)
        fn = _declare(builder, "llvm.fma", [value_type], ir.FunctionType(value_type, [value_type] * 3))
        return builder.call(fn, [pair, args[2], args[3]])

    return acc(s0, s1, v, acc), codegen


def _half_store(upper):
    def typer(typingctx, a, r, c, v):
        if not isinstance(v, Vector) or v.dtype != a.dtype or v.lanes != _half_of(a).lanes:
            return None
        quarter = Vector(v.dtype, v.lanes // 2)

        def codegen(context, builder, signature, args):
            first = quarter.lanes if upper else 0
            part = builder.shuffle_vector(args[3], args[3], ir.Constant(
                ir.VectorType(ir.IntType(32), quarter.lanes), list(range(first, first + quarter.lanes))))
            builder.store(part, _pointer(context, builder, signature, args, quarter), align=_align(quarter))
            return context.get_dummy_value()

        return types.void(a, r, c, v), codegen

    return intrinsic(typer)


_store_low = _half_store(False)
_store_high = _half_store(True)


@intrinsic
def _lanes(typingctx, a):
    count = _vector_of(a).lanes

    def codegen(context, builder, signature, args):
        return ir.Constant(ir.IntType(64), count)

    return types.int64(a), codegen


# The functions kernels call. In compiled code each is its numba overload below (one instruction
# or a few); called from Python (NUMBA_DISABLE_JIT=1) each is the NumPy code here. The overloads
# are small functions that LLVM inlines, not inline="always": numba inlines those in its own IR,
# typing each call site anew, and with some 200 call sites that cost seconds of every cold
# compile (measured: two_layer_gradient compiled in 18.3 s with them inlined by numba, 13.3 s
# without; the kernels run as fast).


def lanes(a):
    """Elements per vector for a's dtype: VECTOR_BYTES / itemsize."""
    return VECTOR_BYTES // a.dtype.itemsize


def vload(a, r, c):
    """The vector a[r, c : c + lanes(a)] of a C-contiguous 2-D array (c + lanes(a) <= a.shape[1])."""
    return a[r, c:c + lanes(a)].copy()


def vload_part(a, r, c, n):
    """a[r, c : c + n] in the first n lanes of a vector, zeros in the rest (0 <= n <= lanes(a))."""
    out = np.zeros(lanes(a), dtype=a.dtype)
    out[:n] = a[r, c:c + n]
    return out


def quarter_lanes(a):
    """Lanes of vload_part_quarter's vectors: a quarter of lanes(a) where vectors are 64 bytes (2
    float64, 4 float32), 0 where they are narrower (the kernels then keep to whole vectors)."""
    return lanes(a) // 4 if VECTOR_BYTES == 64 else 0


def vload_quarter(a, r, c):
    """a[r, c : c + quarter_lanes(a)] as a quarter-width vector (see vload_part_quarter)."""
    return a[r, c:c + lanes(a) // 4].copy()


def vload_part_quarter(a, r, c, n):
    """a[r, c : c + n] in the first n lanes of a quarter-width vector, zeros in the rest
    (0 <= n <= quarter_lanes(a)): for a row's last few elements, whose FMA then takes one 16-byte
    operation where a full vector's takes a whole 64-byte one."""
    out = np.zeros(lanes(a) // 4, dtype=a.dtype)
    out[:n] = a[r, c:c + n]
    return out


def vload_quarter_twice(a, r, c):
    """a[r, c : c + quarter_lanes(a)] twice, in a half-width vector: the columns of a row pair's
    FMA (vfma_pair)."""
    q = a[r, c:c + lanes(a) // 4]
    return np.concatenate((q, q))


def vfma_pair(s0, s1, v, acc):
    """acc + s * v lane by lane, s being s0 in the first half of the lanes and s1 in the second:
    the FMAs of two rows on the same few columns, in one vector (rounded once when compiled)."""
    half = len(v) // 2
    s = np.empty(len(v), dtype=v.dtype)
    s[:half] = s0
    s[half:] = s1
    return acc + s * v


def vstore_low(a, r, c, v):
    """a[r, c : c + len(v) // 2] = the first half of v's lanes."""
    a[r, c:c + len(v) // 2] = v[:len(v) // 2]


def vstore_high(a, r, c, v):
    """a[r, c : c + len(v) // 2] = the second half of v's lanes."""
    a[r, c:c + len(v) // 2] = v[len(v) // 2:]


def vstore(a, r, c, v):
    """a[r, c : c + len(v)] = v, v a vector of lanes(a) lanes or fewer."""
    a[r, c:c + len(v)] = v


def vstore_part(a, r, c, v, n):
    """a[r, c : c + n] = the first n lanes of v (a vector of lanes(a) lanes or fewer); the
    elements after them are not touched."""
    a[r, c:c + n] = v[:n]


def vfma(s, v, acc):
    """acc + s * v, lane by lane, for a scalar s of the vectors' dtype (rounded once when compiled)."""
    return acc + s * v


def vadd(u, v):
    """u + v, lane by lane."""
    return u + v


def vzero(a):
    """A vector of zeros of a's dtype."""
    return np.zeros(lanes(a), dtype=a.dtype)


def nonzero_word(a, r, c):
    """A uint64 with bit l set where a[r, c + l] is non-zero (or NaN), for l < 64: the 64
    elements from a[r, c], all of which must exist."""
    return nonzero_bits(a[r, c:c + 64])


def nonzero_bits(v):
    """A uint64 with bit l set where lane l of v is non-zero (or NaN)."""
    return np.uint64(sum(1 << i for i, e in enumerate(v) if e != 0))


@jit
def vector_rows(n, h, like):
    """An uninitialised (n, w) array of like's dtype whose rows start on vector boundaries: w is h
    rounded up to whole vectors, and the first row is aligned to VECTOR_BYTES. A vector load from
    such a row never straddles two cache lines (x^T g over the rows of g, batch 100: 52 us against
    59 us with g's rows 50 float64 wide). The lanes past h are left as they are: the kernels
    read and write the first h only."""
    step = lanes(like)
    width = (h + step - 1) // step * step
    buf = np.empty(n * width + step, dtype=like.dtype)
    off = (-(buf.ctypes.data // like.itemsize)) % step
    return buf[off:off + n * width].reshape((n, width))


def transpose_tile(a, r0, c0, out):
    """out[c0 + q, r0 : r0 + L] = a[r0 : r0 + L, c0 + q] for q < L (L = lanes(a)), within both
    arrays' bounds: an L x L tile of a, transposed in registers (loads, log2(L) rounds of
    shuffles, stores; nothing else of out is written)."""
    step = lanes(a)
    r1 = min(r0 + step, a.shape[0], out.shape[1])
    c1 = min(c0 + step, a.shape[1], out.shape[0])
    out[c0:c1, r0:r1] = a[r0:r1, c0:c1].T


def dot_rows(a):
    """Rows of g that one row_dots call with W of a's dtype covers: 2 for float64, 1 for float32
    (see _dot_rows)."""
    return _dot_rows(_vector_of(numba.typeof(a)))


def row_dots(W, k0, g, r, out):
    """out[r + i, k0 + q] = sum_j W[k0 + q, j] g[r + i, j] for i < dot_rows(W) and q < lanes(W),
    the rows and columns that out and W have (g may be wider than W): a vector of columns of
    g W^T for a few rows of g, from W's rows, with no transpose of W.

    Each W row goes by vectors of columns into lane-by-lane sums, one FMA a vector, and those are
    summed over the lanes at the end: lanes 0 + 1, 2 + 3, ..., then pairs of those, log2(L) rounds
    (_lane_sums). Nothing else of out is written."""
    step = lanes(W)
    d, h = W.shape
    n = out.shape[0]
    width = (h + step - 1) // step * step
    ks = np.minimum(np.arange(k0, k0 + step), d - 1)
    cols = min(step, min(d, out.shape[1]) - k0)
    for i in range(min(dot_rows(W), n - r)):
        w = np.zeros((step, width), dtype=W.dtype)
        w[:, :h] = W[ks]
        v = np.zeros(width, dtype=W.dtype)
        v[:h] = g[r + i, :h]
        sums = np.zeros((step, step), dtype=W.dtype)
        for j in range(0, width, step):
            sums += w[:, j:j + step] * v[j:j + step]
        while sums.shape[1] > 1:
            sums = sums[:, 0::2] + sums[:, 1::2]
        out[r + i, k0:k0 + cols] = sums[:cols, 0]


@overload(lanes)
def _lanes_overload(a):
    return lambda a: _lanes(a)


@overload(vload)
def _vload_overload(a, r, c):
    return lambda a, r, c: _load(a, r, c)


@overload(vload_part)
def _vload_part_overload(a, r, c, n):
    return lambda a, r, c, n: _load_part(a, r, c, n)


@overload(vstore)
def _vstore_overload(a, r, c, v):
    return lambda a, r, c, v: _store(a, r, c, v)


@overload(vstore_part)
def _vstore_part_overload(a, r, c, v, n):
    return lambda a, r, c, v, n: _store_part(a, r, c, v, n)


@overload(vfma)
def _vfma_overload(s, v, acc):
    return lambda s, v, acc: _fma(s, v, acc)


@overload(vzero)
def _vzero_overload(a):
    return lambda a: _zero(a)


@overload(nonzero_bits)
def _nonzero_bits_overload(v):
    return lambda v: _nonzero_bits(v)


@overload(vadd)
def _vadd_overload(u, v):
    return lambda u, v: _add(u, v)


@overload(transpose_tile, inline="always")  # see row_dots
def _transpose_tile_overload(a, r0, c0, out):
    return lambda a, r0, c0, out: _transpose_tile(a, r0, c0, out)


# inline="always" for the two large ones: LLVM leaves their bodies behind a call, and every call
# then re-reads the arrays' shapes and row pointers (dx of 10 float64 rows by 784 x 50: 24 us so,
# 19 inlined; W^T of 784 x 50 float64 by transpose_tile: 11.6 us so, 7.5 inlined).
@overload(row_dots, inline="always")
def _row_dots_overload(W, k0, g, r, out):
    return lambda W, k0, g, r, out: _row_dots(W, k0, g, r, out)


@overload(dot_rows)
def _dot_rows_overload(a):
    count = _dot_rows(_vector_of(a))
    return lambda a: count


@overload(quarter_lanes)
def _quarter_lanes_overload(a):
    count = _vector_of(a).lanes // 4 if VECTOR_BYTES == 64 else 0
    return lambda a: count


@overload(vload_part_quarter)
def _vload_part_quarter_overload(a, r, c, n):
    return lambda a, r, c, n: _load_part_quarter(a, r, c, n)


@overload(vload_quarter)
def _vload_quarter_overload(a, r, c):
    return lambda a, r, c: _load_quarter(a, r, c)


@overload(nonzero_word)
def _nonzero_word_overload(a, r, c):
    return lambda a, r, c: _nonzero_word(a, r, c)


@overload(vload_quarter_twice)
def _vload_quarter_twice_overload(a, r, c):
    return lambda a, r, c: _load_quarter_twice(a, r, c)


@overload(vfma_pair)
def _vfma_pair_overload(s0, s1, v, acc):
    return lambda s0, s1, v, acc: _fma_pair(s0, s1, v, acc)


@overload(vstore_low)
def _vstore_low_overload(a, r, c, v):
    return lambda a, r, c, v: _store_low(a, r, c, v)


@overload(vstore_high)
def _vstore_high_overload(a, r, c, v):
    return lambda a, r, c, v: _store_high(a, r, c, v)
