"""A compiled CPU kernel for ELM / Branch-ELM inference: the input projection (event by event), the synaptic
filter, the MLP and the memory recursion of every ms fused into one C loop.

The PyTorch path (:mod:`neuroemu.models.elm`) runs the recursion as ~7 small tensor operations per ms on the
whole batch, after projecting the inputs, re-laying them out time-major, filtering them and adding the bias in
separate passes; at the published size (d_m = 15: 30 hidden units) each operation is a few hundred
multiply-adds, so per-operation overhead and passes over memory dominate. Here a group of traces runs side
by side in the lanes of a few vectors (GCC vector extensions, so the compiler maps them onto this CPU's SIMD
registers), one ms after the other: each trace's input spikes add their rows of the projection to its
filtered drive, then the hidden layer, the memory update (tanh as a rational function) and the memories are
written (batch, time, d) where the readout wants them. Groups are independent, so the batch is split over
threads (``ctypes`` releases the GIL); every trace's arithmetic is the same whatever the batch or thread
count. Same results as the PyTorch path up to float rounding (tests/test_families.py checks it against the
literal equations). Measured: ``benchmarks/bench_families.py`` (docs/models.md).

Inference only (no autograd), float32 on CPU. Compiled once with the system C compiler into
``<cache>/kernels/`` (see :func:`neuroemu.io.cache_root`); where no compiler works, :func:`kernel` returns None
and the PyTorch path runs. ``NEUROEMU_NATIVE=0`` disables it.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from neuroemu.io import cache_root
from neuroemu.models.sparse_conv import SparseEvents

__all__ = ["SOURCE", "kernel", "elm_forward", "available"]

SOURCE = r"""
#include <stddef.h>
#include <string.h>

/* Traces run side by side in the lanes of G native vectors (GCC vector extensions, W floats each: 16 with
   AVX-512, 8 with AVX, 4 otherwise): L = G * W traces per group; G independent vectors hide the latency of
   the multiply-add chains. */
#if defined(__AVX512F__)
#define W 16
#elif defined(__AVX__)
#define W 8
#else
#define W 4
#endif
#define G 2  /* measured on AVX2: G = 1, 2, 3, 4 -> 57, 43, 41, 37 ms for 128 x 2000 ms; 2 keeps small batches cheap */
#define L (G * W)
typedef float vf __attribute__((vector_size(4 * W)));
typedef int vi __attribute__((vector_size(4 * W)));

static inline vf splat(float x) { return (vf){0} + x; }
static inline vf vmax0(vf x) { vi pos = x > 0.0f; return (vf)((vi)x & pos); }
static inline vf vclamp(vf x, float c)
{
    vi hi = x > c, lo = x < -c;
    x = (vf)(((vi)x & ~hi) | ((vi)splat(c) & hi));
    return (vf)(((vi)x & ~lo) | ((vi)splat(-c) & lo));
}

/* tanh as a rational function (odd degree-13 numerator, even degree-6 denominator; error ~1e-7 over the
   float range). */
static inline vf vtanh(vf x)
{
    x = vclamp(x, 7.90531110763549805f);
    const vf x2 = x * x;
    vf p = splat(-2.76076847742355e-16f);
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 - 8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    vf q = splat(1.19825839466702e-06f);
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    return x * p / q;
}

/* Traces [b0, b1) of the batch, L at a time. The input is projected to R values per ms, either given as
   u (B, T, R) or as events: CSR offsets (B * T + 1; row b * T + t), their channels and values (NULL: all 1)
   and the projection V (n_in, R); the R filtered traces f drive the H hidden units directly (Wf NULL, R = H)
   or through Wf (R, H). f0 (B, R) or NULL: f at the ms before the chunk; c0 (B, H) or NULL: a drive of the
   hidden units carried from the chunk before, decaying like the traces. m0 (B, D); A (D, H); W2 (H, D)
   (slope folded in); b2, kappa, gain (D; tanh gain folded into gain).
   Out: mem (B, T, D), f_last (B, R). */
void elm_forward(int b0, int b1, int T, int R, int H, int D, const float *u, const long long *offsets,
                 const long long *cols, const float *vals, const float *V, const float *Wf, const float *f0,
                 const float *c0, float ks, const float *bias1, const float *m0, const float *A, const float *W2,
                 const float *b2, const float *kappa, const float *gain, int silu, float *mem, float *f_last)
{
    float f[L][R];
    vf a[H][G], m[D][G], c[H][G], fv[Wf ? R : 1][G];
    for (int g0 = b0; g0 < b1; g0 += L) {
        const int n = b1 - g0 < L ? b1 - g0 : L;
        for (int l = 0; l < L; ++l)
            for (int r = 0; r < R; ++r) f[l][r] = (f0 && l < n) ? f0[(size_t)(g0 + l) * R + r] : 0.0f;
        for (int j = 0; j < D; ++j) {
            float tmp[L];
            for (int l = 0; l < L; ++l) tmp[l] = l < n ? m0[(size_t)(g0 + l) * D + j] : 0.0f;
            memcpy(m[j], tmp, sizeof tmp);
        }
        for (int h = 0; h < H; ++h) {
            float tmp[L];
            for (int l = 0; l < L; ++l) tmp[l] = (c0 && l < n) ? c0[(size_t)(g0 + l) * H + h] : 0.0f;
            memcpy(c[h], tmp, sizeof tmp);
        }
        for (int t = 0; t < T; ++t) {
            for (int l = 0; l < n; ++l) {  /* each trace's synaptic filter and its input of this ms */
                float *fl = f[l];
                const size_t row_i = (size_t)(g0 + l) * T + t;
                for (int r = 0; r < R; ++r) fl[r] *= ks;
                if (u) {
                    const float *ur = u + row_i * R;
                    for (int r = 0; r < R; ++r) fl[r] += ur[r];
                } else {
                    for (long long e = offsets[row_i]; e < offsets[row_i + 1]; ++e) {
                        const float *row = V + (size_t)cols[e] * R;
                        const float v = vals ? vals[e] : 1.0f;
                        for (int r = 0; r < R; ++r) fl[r] += v * row[r];
                    }
                }
            }
            if (Wf)  /* the traces as lane vectors, for the matrix to the hidden units */
                for (int r = 0; r < R; ++r) {
                    float tmp[L];
                    for (int l = 0; l < L; ++l) tmp[l] = f[l][r];
                    memcpy(fv[r], tmp, sizeof tmp);
                }
            for (int h = 0; h < H; ++h) {  /* hidden layer: drive + bias + memory term */
                vf acc[G];
                if (Wf) {
                    for (int q = 0; q < G; ++q) { c[h][q] *= ks; acc[q] = c[h][q] + bias1[h]; }
                    for (int r = 0; r < R; ++r) {
                        const float w = Wf[(size_t)r * H + h];
                        for (int q = 0; q < G; ++q) acc[q] += fv[r][q] * w;
                    }
                } else {
                    float tmp[L];
                    for (int l = 0; l < L; ++l) tmp[l] = f[l][h] + bias1[h];
                    memcpy(acc, tmp, sizeof tmp);
                }
                for (int k = 0; k < D; ++k) {
                    const float w = A[(size_t)k * H + h];
                    for (int q = 0; q < G; ++q) acc[q] += m[k][q] * w;
                }
                for (int q = 0; q < G; ++q)
                    a[h][q] = silu ? acc[q] * (0.5f * vtanh(0.5f * acc[q]) + 0.5f) : vmax0(acc[q]);
            }
            for (int j = 0; j < D; ++j) {  /* memory update */
                vf acc[G];
                for (int q = 0; q < G; ++q) acc[q] = splat(b2[j]);
                for (int h = 0; h < H; ++h) {
                    const float w = W2[(size_t)h * D + j];
                    for (int q = 0; q < G; ++q) acc[q] += a[h][q] * w;
                }
                for (int q = 0; q < G; ++q) m[j][q] = kappa[j] * m[j][q] + gain[j] * vtanh(acc[q]);
            }
            for (int j = 0; j < D; ++j) {
                float tmp[L];
                memcpy(tmp, m[j], sizeof tmp);
                for (int l = 0; l < n; ++l) mem[((size_t)(g0 + l) * T + t) * D + j] = tmp[l];
            }
        }
        for (int l = 0; l < n; ++l)
            for (int r = 0; r < R; ++r) f_last[(size_t)(g0 + l) * R + r] = f[l][r];
    }
}
"""

#: Compiler flags: vectorised for this CPU (the lanes of a group), fused multiply-adds.
CFLAGS = ["-O3", "-march=native", "-fno-trapping-math", "-shared", "-fPIC"]

#: Traces per thread's share are whole multiples of this (the kernel's widest group: 2 AVX-512 vectors).
GROUP = 32

_LOCK = threading.Lock()
_KERNEL: ctypes.CDLL | None | bool = False  # False: not tried yet


def _build(root: Path) -> Path | None:
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        return None
    key = hashlib.sha256((SOURCE + " ".join(CFLAGS) + cc + os.uname().machine).encode()).hexdigest()[:16]
    lib = root / "kernels" / f"elm_{key}.so"
    if lib.is_file():
        return lib
    lib.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=lib.parent) as tmp:
        src = Path(tmp) / "elm.c"
        src.write_text(SOURCE)
        out = Path(tmp) / "elm.so"
        r = subprocess.run([cc, *CFLAGS, str(src), "-o", str(out)], capture_output=True, text=True)
        if r.returncode != 0 or not out.is_file():
            return None
        os.replace(out, lib)  # atomic: concurrent builders agree on the file
    return lib


def kernel() -> ctypes.CDLL | None:
    """The compiled kernel (built on first use), or None where it cannot be built or ``NEUROEMU_NATIVE=0``."""
    global _KERNEL
    if os.environ.get("NEUROEMU_NATIVE", "1") == "0":
        return None
    with _LOCK:
        if _KERNEL is False:
            try:
                lib = _build(cache_root())
                _KERNEL = ctypes.CDLL(str(lib)) if lib is not None else None
            except (OSError, subprocess.SubprocessError):
                _KERNEL = None
            if _KERNEL is not None:
                fn = _KERNEL.elm_forward
                fn.restype = None
                fn.argtypes = ([ctypes.c_int] * 6 + [ctypes.c_void_p] * 8 + [ctypes.c_float]
                               + [ctypes.c_void_p] * 7 + [ctypes.c_int] + [ctypes.c_void_p] * 2)
        return _KERNEL or None


def available() -> bool:
    """Whether the compiled kernel can run here."""
    return kernel() is not None


def elm_forward(inputs: torch.Tensor | SparseEvents, v: torch.Tensor, w: torch.Tensor | None,
                carry: torch.Tensor | None, kappa_s: float, b1: torch.Tensor, m0: torch.Tensor, a_mat: torch.Tensor,
                w2: torch.Tensor, b2: torch.Tensor, kappa: torch.Tensor, gain: torch.Tensor, silu: bool,
                threads: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Memories (B, T, d) and the last filtered drive of the hidden units (B, h) of one window.

    ``inputs``: :class:`~neuroemu.models.sparse_conv.SparseEvents` (projected by ``v`` (n_in, r) inside the
    kernel, event by event) or the projected inputs (B, T, r) themselves (``v`` unused but for its width).
    ``w`` (r, h): the matrix from the r filtered traces to the hidden units (None: r = h, the traces are the
    drive). ``carry`` (B, h; None: zeros): the drive at the ms before the window; ``m0`` (B, d): the memory.
    ``a_mat`` (d, h), ``w2`` (h, d) and ``b2`` (d) are the recursion's matrices with the tanh slope folded in,
    ``gain`` (d) with the tanh gain (as in ``ELM._recur``). ``threads``: groups of traces run in parallel on
    this many threads."""
    lib = kernel()
    if lib is None:
        raise RuntimeError("the native ELM kernel is not available here")
    d = m0.shape[1]
    r_width = v.shape[1]
    h = a_mat.shape[1]
    keep: list[torch.Tensor] = []  # every tensor whose pointer the kernel reads stays alive here

    def ptr(x: torch.Tensor | None, dtype: torch.dtype = torch.float32) -> int | None:
        if x is None:
            return None
        x = x.detach().to(dtype).contiguous()
        keep.append(x)
        return x.data_ptr()

    if isinstance(inputs, SparseEvents):
        bsz, t_len = inputs.batch, inputs.time
        offsets = torch.searchsorted(inputs.rows, torch.arange(bsz * t_len + 1, dtype=inputs.rows.dtype))
        u_p, off_p, col_p = None, ptr(offsets, torch.int64), ptr(inputs.cols, torch.int64)
        val_p, v_p = ptr(inputs.values), ptr(v)
    else:
        bsz, t_len = inputs.shape[0], inputs.shape[1]
        u_p, off_p, col_p, val_p, v_p = ptr(inputs), None, None, None, None
    # the carried drive: the traces' own state when they are the drive, else a decaying term of its own
    f0_p, c0_p = (ptr(carry), None) if w is None else (None, ptr(carry))
    w_p = ptr(w)
    weights = [ptr(x) for x in (b1, m0, a_mat, w2, b2, kappa, gain)]
    mem = torch.empty(bsz, t_len, d, dtype=torch.float32)
    f_last = torch.empty(bsz, r_width, dtype=torch.float32)

    def run(lo: int, hi: int) -> None:
        lib.elm_forward(lo, hi, t_len, r_width, h, d, u_p, off_p, col_p, val_p, v_p, w_p, f0_p, c0_p,
                        float(kappa_s), *weights, int(bool(silu)), mem.data_ptr(), f_last.data_ptr())

    n = max(1, min(int(threads), -(-bsz // GROUP)))
    if n == 1:
        run(0, bsz)
    else:
        step = -(-(-(-bsz // GROUP)) // n) * GROUP  # whole groups of traces per thread
        cuts = [min(bsz, i * step) for i in range(n + 1)]
        with ThreadPoolExecutor(n) as pool:
            list(pool.map(run, cuts[:-1], cuts[1:]))
    if w is None:
        return mem, f_last
    drive_last = f_last @ w.detach().float()
    if carry is not None:
        drive_last = drive_last + float(kappa_s) ** t_len * carry.detach().float()
    return mem, drive_last
