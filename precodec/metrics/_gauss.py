"""libjxl's recursive Gaussian (sigma 1.5) for SSIMULACRA2 (private).

libjxl blurs with Charalampidis' recursive filter ("Recursive Implementation
of the Gaussian Filter Using Truncated Cosine Functions", 2016): three
second-order resonators fed with ``x[n - N - 1] + x[n + N - 1]``.  Two
facts shape this module:

* In exact arithmetic the filter is a finite symmetric kernel (9 taps for
  sigma 1.5) applied with zero padding.  :func:`fir_blur` applies that kernel
  with OpenCV; it is fast and is the mathematically exact blur.
* The resonators' poles lie on the unit circle, so the float32 rounding of
  the C++ code is never damped: its blurred planes carry a small
  deterministic noise (about 1e-6).  On the coarse scales of high-quality
  pairs, where the real differences are of that size, this noise moves the
  reference scores by up to about 1.3 points.  To match the reference tool,
  :func:`iir_blur_batch` replays the C++ arithmetic operation by operation
  (float32 storage, fused multiply-adds emulated in float64, the 4-lane
  unrolled horizontal pass and its scalar head and tail), vectorised over
  all rows (then all columns) of a batch of images at once.  It is used on
  the small scales, where it is cheap.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["RADIUS", "KERNEL", "Workspace", "fir_blur", "iir_blur_batch"]

_F32 = np.float32
_CHUNK = 32  # vertical steps per precomputed chunk


_allocator_warmed = False


def _warm_allocator() -> None:
    """Let glibc's malloc serve multi-MB arrays from its heap (once per process).

    glibc maps every allocation above its mmap threshold (128 KiB at start)
    afresh and unmaps it on free, so each new array of a prepared reference
    pays a page fault per 4 KiB page (about a quarter of a reference's
    preparation on the 2-core development machine).  The threshold rises by itself to the size of the
    largest mapped block freed so far (up to 32 MiB): code that frees big
    temporaries gets there early, code that reuses its buffers never does.
    Freeing one untouched 31 MiB block does the same at no cost.  Elsewhere
    than glibc this is a harmless allocation.
    """
    global _allocator_warmed
    if not _allocator_warmed:
        _allocator_warmed = True
        block = np.empty(31 << 20, dtype=np.uint8)  # never touched, so never paged in
        del block


class Workspace:
    """Reusable scratch arrays, by name and shape (private; one per thread).

    Fresh multi-megabyte numpy arrays can cost a page fault per 4 KiB page
    (the kernel zeroes each on first touch).  The scorer keeps one
    workspace per thread and image size, so repeated scores of same-sized
    images allocate no large array.
    """

    __slots__ = ("_bufs",)

    def __init__(self) -> None:
        self._bufs: dict[tuple, np.ndarray] = {}
        _warm_allocator()

    @property
    def nbytes(self) -> int:
        """Total size of the buffers held."""
        return sum(b.nbytes for b in self._bufs.values())

    def get(self, name: str, shape: tuple[int, ...], dtype: type = np.float32) -> np.ndarray:
        """An uninitialised array for ``name`` (the same one on every call with this shape)."""
        key = (name, shape, dtype)
        buf = self._bufs.get(key)
        if buf is None:
            buf = self._bufs[key] = np.empty(shape, dtype=dtype)
        return buf


def _buf(ws: Workspace | None, name: str, shape: tuple[int, ...], dtype: type = np.float32) -> np.ndarray:
    return np.empty(shape, dtype=dtype) if ws is None else ws.get(name, shape, dtype)


def _coefficients(sigma: float) -> tuple[int, np.ndarray, np.ndarray]:
    """Radius ``N`` and the resonator coefficients ``n2``, ``d1`` (float64).

    Construction of the paper, eqs. (33)-(57), as libjxl does it.
    """
    radius = float(round(3.2795 * sigma + 0.2546))  # (57)
    omega = np.pi / (2.0 * radius) * np.array([1.0, 3.0, 5.0])
    sign = np.array([1.0, -1.0, 1.0])
    p = sign / np.tan(0.5 * omega)  # (37)
    r = sign * p * p / np.sin(omega)  # (44)
    rho = np.exp(-0.5 * sigma * sigma * omega * omega) / radius  # (50)
    d13 = p[0] * r[1] - r[0] * p[1]  # (52)
    d35 = p[1] * r[2] - r[1] * p[2]
    d51 = p[2] * r[0] - r[2] * p[0]
    z15, z35 = d35 / d13, d51 / d13
    system = np.array([p, r, [z15, z35, 1.0]])  # (56)
    gamma = np.array([1.0, radius * radius - sigma * sigma, z15 * rho[0] + z35 * rho[1] + rho[2]])
    beta = np.linalg.solve(system, gamma)  # (53)
    n2 = -beta * np.cos(omega * (radius + 1.0))  # (33)
    d1 = -2.0 * np.cos(omega)
    return int(radius), n2, d1


RADIUS, _N2, _D1 = _coefficients(1.5)

# float32 coefficients as stored by libjxl, kept as float64 for the FMA emulation
_N2_F = _N2.astype(_F32).astype(np.float64)
_D1_F = _D1.astype(_F32).astype(np.float64)


def _unrolled_multipliers() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-lane multipliers of the 4-output unrolled horizontal recursion.

    Expanding ``o = n i - d p - pp`` four times gives each lane's factor for
    the inputs and for the two outputs preceding the block.
    """
    n, d = _N2[:, None], _D1[:, None]
    d2 = d * d
    mul_prev = np.hstack([-d, d2 - 1.0, -d2 * d + 2.0 * d, d2 * d2 - 3.0 * d2 + 1.0])
    mul_prev2 = np.hstack([-np.ones_like(d), d, -d2 + 1.0, d2 * d - 2.0 * d])
    mul_in = np.hstack([n, -d * n, d2 * n - n, -d2 * d * n + 2.0 * d * n])
    as_f32 = lambda a: a.astype(_F32).astype(np.float64)  # noqa: E731
    return as_f32(mul_prev), as_f32(mul_prev2), as_f32(mul_in)


_MUL_PREV, _MUL_PREV2, _MUL_IN = _unrolled_multipliers()


def _impulse_response() -> np.ndarray:
    """Exact-arithmetic impulse response (the FIR kernel), float32, symmetric."""
    n_rad = RADIUS
    length = 4 * n_rad + 3
    centre = 2 * n_rad + 1
    x = np.zeros(length)
    x[centre] = 1.0
    prev = np.zeros(3)
    prev2 = np.zeros(3)
    out = np.zeros(length)
    for n in range(length):  # a few dozen scalar steps, once at import
        lo, hi = n - n_rad - 1, n + n_rad - 1
        s = (x[lo] if lo >= 0 else 0.0) + (x[hi] if hi < length else 0.0)
        cur = _N2 * s - _D1 * prev - prev2
        prev2, prev = prev, cur
        out[n] = cur.sum()
    kernel = out[centre - n_rad + 1 : centre + n_rad]
    return (0.5 * (kernel + kernel[::-1])).astype(_F32)


KERNEL = _impulse_response()


def fir_blur(img: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Exact-arithmetic blur: the 9-tap kernel with zero padding (any channel count).

    ``out`` (same shape and dtype as ``img``, not ``img`` itself) receives
    the result when given.
    """
    return cv2.sepFilter2D(img, -1, KERNEL, KERNEL, dst=out, borderType=cv2.BORDER_CONSTANT)


# --------------------------------------------------------------------------
# bit-faithful replay of the float32 recursion


def _fma(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """float32 ``a * b + c`` rounded once (products of float32 are exact in float64)."""
    t = np.multiply(a, b, dtype=np.float64)
    t += c
    return t.astype(_F32)


def _horizontal(
    x: np.ndarray, widths: list[int], spans: list[tuple[int, int]], ws: Workspace | None = None
) -> np.ndarray:
    """FastGaussian1D of libjxl along axis 0 of ``x`` (shape ``(W, M)``).

    Columns ``spans[g]`` belong to lines of length ``widths[g]``; the batch
    is zero padded to ``W = max(widths)``.  Each line follows the C++ control
    flow for its own length: a scalar head up to index 8, blocks of 4 outputs
    computed from the two outputs before the block, then a scalar tail.
    Everything that does not depend on earlier outputs (the input terms of
    every block) is computed for all blocks at once; only the two
    feedback multiply-adds run step by step.
    """
    n_rad = RADIUS
    width, m = x.shape
    pad_lo = 2 * n_rad
    first_aligned = (n_rad + 1 + 3) // 4 * 4
    # where each line leaves the unrolled loop (and starts its scalar tail)
    ends: list[int | None] = []
    for w in widths:
        if w <= first_aligned:
            ends.append(None)
        else:
            n = first_aligned
            while n < w - n_rad + 1 - 3:
                n += 4
            ends.append(n)
    last = max((e for e in ends if e is not None), default=first_aligned)
    total = max(width, last + 4)
    xp = _buf(ws, "h.xp", (pad_lo + total + n_rad + 4, m))
    xp[:pad_lo] = 0.0
    xp[pad_lo + width :] = 0.0
    xp[pad_lo : pad_lo + width] = x
    # s[n] = x[n - N - 1] + x[n + N - 1] for every n in [-N + 1, total)
    n0 = -n_rad + 1
    lo, hi = n0 - n_rad - 1 + pad_lo, n0 + n_rad - 1 + pad_lo
    s_all = np.add(xp[lo : lo + total - n0], xp[hi : hi + total - n0], out=_buf(ws, "h.s", (total - n0, m)))

    def s_at(n: int) -> np.ndarray:
        return s_all[n - n0]

    out = _buf(ws, "h.out", (total, m))
    a0 = _MUL_IN[:, :1].astype(_F32)
    mp0, mpp0 = _MUL_PREV[:, :1], _MUL_PREV2[:, :1]

    def scalar_step(n: int, prev: np.ndarray, prev2: np.ndarray, cols: slice) -> np.ndarray:
        o = s_at(n)[cols] * a0  # float32 multiply, one rounding
        o = _fma(mpp0, prev2, o)
        o = _fma(mp0, prev, o)
        if n >= 0:
            out[n, cols] = o[0] + (o[1] + o[2])
        return o

    prev = np.zeros((3, m), dtype=_F32)
    prev2 = np.zeros((3, m), dtype=_F32)
    everything = slice(None)
    n = n0
    while n < min(first_aligned, width):
        o = scalar_step(n, prev, prev2, everything)
        prev2, prev = prev, o
        n += 1

    saved: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    wanted: dict[int, list[int]] = {}
    for g, e in enumerate(ends):
        if e is not None and e < widths[g]:
            wanted.setdefault(e, []).append(g)

    def save(at: int, p1: np.ndarray, p2: np.ndarray) -> None:
        for g in wanted.get(at, ()):
            lo, hi = spans[g]
            saved[g] = (p1[:, lo:hi].copy(), p2[:, lo:hi].copy())

    save(n, prev, prev2)
    n_blocks = (last - n) // 4 if n < last else 0
    if n_blocks:
        start = n
        sb = s_all[start - n0 : start - n0 + 4 * n_blocks].reshape(n_blocks, 4, m)
        # The input terms of every block do not depend on earlier outputs:
        # lane j of resonator k is f32(s0 a_kj) followed by the multiply-adds
        # a_k(j-i) s_i (i = 1..j), each rounded; computed for all blocks at
        # once.
        # (One call per lane with scalar multipliers: numpy's broadcasting
        # loops over small axes are several times slower.)
        o_all = _buf(ws, "h.o", (n_blocks, 3, 4, m))
        sb64 = _buf(ws, "h.s64", sb.shape, np.float64)
        sb64[...] = sb
        t64 = _buf(ws, "h.t64", (n_blocks, m), np.float64)
        for k in range(3):
            for j in range(4):
                o = o_all[:, k, j]
                np.multiply(sb[:, 0], _F32(_MUL_IN[k, j]), out=o)  # float32: one rounding
                for i in range(1, j + 1):
                    np.multiply(sb64[:, i], _MUL_IN[k, j - i], out=t64)
                    t64 += o
                    o[...] = t64
        # the feedback: two rounded multiply-adds per block, block by block
        # (float64 state holding float32 values, explicit rounding casts and
        # no broadcasting along the contiguous axis: the fast numpy loops)
        mpp = _buf(ws, "h.mpp", (3, 4, m), np.float64)
        mpp[...] = _MUL_PREV2[:, :, None]
        mp = _buf(ws, "h.mp", (3, 4, m), np.float64)
        mp[...] = _MUL_PREV[:, :, None]
        o64 = _buf(ws, "h.o64", o_all.shape, np.float64)
        np.copyto(o64, o_all)
        t = _buf(ws, "h.t", (3, 4, m), np.float64)
        t2 = _buf(ws, "h.t2", (3, 4, m), np.float64)
        r32 = _buf(ws, "h.r32", (3, 4, m))
        ring = _buf(ws, "h.ring", (2, 2, 3, m), np.float64)
        p2, p1 = ring[1, 0], ring[1, 1]
        np.copyto(p2, prev2)
        np.copyto(p1, prev)
        for b in range(n_blocks):
            o = o_all[b]
            np.multiply(mpp, p2[:, None, :], out=t)
            t += o64[b]
            np.copyto(r32, t)  # rounded once
            np.copyto(t2, r32)
            np.multiply(mp, p1[:, None, :], out=t)
            t += t2
            np.copyto(o, t)  # rounded once
            p2, p1 = ring[b & 1, 0], ring[b & 1, 1]
            np.copyto(p2, o[:, 2])
            np.copyto(p1, o[:, 3])
            if wanted:
                save(start + 4 * (b + 1), o[:, 3], o[:, 2])
        # outputs of all blocks: o0 + (o1 + o2)
        dst = out[start : start + 4 * n_blocks].reshape(n_blocks, 4, m)
        np.add(o_all[:, 1], o_all[:, 2], out=dst)
        np.add(o_all[:, 0], dst, out=dst)
    # scalar tails, one group of lines at a time
    for g, (p1, p2) in saved.items():
        lo, hi = spans[g]
        cols = slice(lo, hi)
        end = ends[g]
        assert end is not None
        for k in range(end, widths[g]):
            o = scalar_step(k, p1, p2, cols)
            p2, p1 = p1, o
    return out[:width]


def _vertical(x: np.ndarray, ws: Workspace | None = None, tag: object = 0) -> np.ndarray:
    """libjxl's vertical recursion along axis 0 of ``x`` (shape ``(H, M)``), zero padded."""
    n_rad = RADIUS
    height, m = x.shape
    pad_lo = 2 * n_rad
    xp = _buf(ws, "v.xp", (pad_lo + height + n_rad + 4, m))
    xp[:pad_lo] = 0.0
    xp[pad_lo + height :] = 0.0
    xp[pad_lo : pad_lo + height] = x
    n0 = -n_rad + 1
    steps = height - n0
    lo, hi = n0 - n_rad - 1 + pad_lo, n0 + n_rad - 1 + pad_lo
    s_all = np.add(xp[lo : lo + steps], xp[hi : hi + steps], out=_buf(ws, "v.s", (steps, m)))
    # y[n] = n2 * s[n] + inner, inner = -d1 * y[n-1] - y[n-2]; each with one rounding.
    # n2 * s is exact in float64: precomputed per chunk of steps (bounded memory).
    out = _buf(ws, f"v.out{tag}", (steps, m))
    # State in float64 holding float32 values; every rounding is an explicit
    # cast (numpy's mixed-type and broadcasting loops are ~3x slower).
    d1 = _buf(ws, "v.d1", (3, m), np.float64)
    d1[...] = _D1_F[:, None]
    ring = _buf(ws, "v.ring", (4, 3, m), np.float64)
    ring[2:] = 0.0
    y2, y1 = ring[2], ring[3]
    t = _buf(ws, "v.t", (3, m), np.float64)
    u = _buf(ws, "v.u", (3, m))
    for c0 in range(0, steps, _CHUNK):
        c1 = min(steps, c0 + _CHUNK)
        s64 = _buf(ws, "v.s64", (c1 - c0, m), np.float64)
        s64[...] = s_all[c0:c1]
        n2s = _buf(ws, "v.n2s", (c1 - c0, 3, m), np.float64)
        for k in range(3):
            np.multiply(s64, _N2_F[k], out=n2s[:, k])
        ys = _buf(ws, "v.ys", (c1 - c0, 3, m))
        for k in range(c1 - c0):
            np.multiply(d1, y1, out=t)
            t += y2
            np.copyto(u, t)  # -inner, rounded once (rounding is symmetric)
            np.copyto(t, u)
            np.subtract(n2s[k], t, out=t)
            y = ys[k]
            np.copyto(y, t)  # rounded once
            y2 = y1
            y1 = ring[(c0 + k) & 3]
            np.copyto(y1, y)
        np.add(ys[:, 1], ys[:, 2], out=out[c0:c1])
        np.add(ys[:, 0], out[c0:c1], out=out[c0:c1])
    return out[steps - height :]


def _transposed(im: np.ndarray, ws: Workspace | None) -> np.ndarray:
    """``im.transpose(1, 0, 2)`` as a contiguous array (OpenCV's blocked transpose: ~5x numpy's copy)."""
    h, w, c = im.shape
    if c > 4:  # more channels than OpenCV's transpose takes
        return np.ascontiguousarray(im.transpose(1, 0, 2))
    out = _buf(ws, "b.tr", (w, h, c))
    cv2.transpose(im if c > 1 else im[:, :, 0], dst=out if c > 1 else out[:, :, 0])
    return out


def iir_blur_batch(
    images: list[np.ndarray], ws: Workspace | None = None, tag: object = 0
) -> list[np.ndarray]:
    """Blur ``HxWxC`` float32 images exactly as libjxl's float32 code does.

    All images are processed in one vectorised pass (horizontal, then
    vertical), so the per-step Python cost is paid once for the batch.
    Without a workspace the results are new arrays; with one they are views
    of its buffers, valid until the next call with the same ``tag`` and
    shapes.
    """
    if not images:
        return []
    # horizontal pass: lines are image rows; put the line axis first
    w_max = max(im.shape[1] for im in images)
    m_total = sum(im.shape[0] * im.shape[2] for im in images)
    xh = _buf(ws, "b.xh", (w_max, m_total))
    spans: list[tuple[int, int]] = []
    widths: list[int] = []
    pos = 0
    for im in images:
        h, w, c = im.shape
        xh[:w, pos : pos + h * c] = _transposed(im, ws).reshape(w, h * c)
        xh[w:, pos : pos + h * c] = 0.0
        # consecutive images of one width form one group of lines
        if widths and widths[-1] == w and spans[-1][1] == pos:
            spans[-1] = (spans[-1][0], pos + h * c)
        else:
            spans.append((pos, pos + h * c))
            widths.append(w)
        pos += h * c
    hx = _horizontal(xh, widths, spans, ws)
    # vertical pass: lines are image columns, rows are the first axis already
    h_max = max(im.shape[0] for im in images)
    xv = _buf(ws, "b.xv", (h_max, sum(im.shape[1] * im.shape[2] for im in images)))
    pos_h = pos_v = 0
    for im in images:
        h, w, c = im.shape
        block = _transposed(hx[:w, pos_h : pos_h + h * c].reshape(w, h, c), ws)
        xv[:h, pos_v : pos_v + w * c] = block.reshape(h, w * c)
        xv[h:, pos_v : pos_v + w * c] = 0.0
        pos_h += h * c
        pos_v += w * c
    vy = _vertical(xv, ws, tag)
    out = []
    pos = 0
    for im in images:
        h, w, c = im.shape
        view = vy[:h, pos : pos + w * c].reshape(h, w, c)
        out.append(view if ws is not None else np.ascontiguousarray(view))
        pos += w * c
    return out
