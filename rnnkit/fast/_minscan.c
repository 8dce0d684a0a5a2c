/*
 * The scan of minGRU and minLSTM (rnnkit/cells/minrnn.py derives every line
 * used here), forward and backward, each one fused pass over the sequence.
 *
 * min_fwd/min_bwd: NumPy does the one input product k = x W_ih^T + b_ih (k:
 * (G, T, B, H), one contiguous block per gate) and, after the backward, the
 * weight gradients and dx; everything between runs here.  min_fwd_x/min_bwd_x
 * (for a small input size I) do the input product here too, inside the loops
 * over channels (RK_PROJ), so that neither k nor dk (G T B H numbers each way,
 * 16 MB for minGRU at T=1000, B=32, H=64 float32) is ever written to memory
 * and read back: the forward computes k from x, the backward computes it
 * again, adds dL/dW_ih = sum_t dk_t^T x_t and dL/db_ih = sum_t dk_t into
 * per-thread sums (added in thread order at the end) and writes dL/dx_t =
 * dk_t W_ih from each batch row's dk, kept in a row buffer (each thread owns
 * whole rows).  Per step t and channel n (N = B*H channels, each an
 * independent linear recurrence):
 *
 *   forward    gate (1g)/(1l), g (2), a_t = 1 - z_t = e^{-d_t}, b_t = z_t g(k_h)
 *              h_t = a_t h_{t-1} + b_t,   y_t = h_t                          (3)
 *   backward   dh_t = e_t + g_{t+1},  g_{t+1} = a_{t+1} dh_{t+1},  g_T = dL/dh_T  (5)
 *              and the local derivatives of the docstring, written as dk
 *
 * The decay is computed from its log: d_t = softplus(q_t), so a_t = e^{-d_t}
 * = sigma(-q_t) and z_t = e^{q_t - d_t} = sigma(q_t), both from one
 * u = e^{-|q_t|} (minLSTM: q_t = log i_t - log f_t from e^{-|k_f|}, e^{-|k_i|}
 * and e^{-|log(1 + e^{-k_i}) - log(1 + e^{-k_f})|}, never overflowing).  The
 * recurrence then runs on a_t, b_t in [0, 1] x [0, inf): no e^{+D} is ever
 * formed, so unlike the NumPy block scan (4) nothing can overflow however
 * steep the decay or long the sequence, and it agrees with it to rounding
 * (float64 ~1e-13).  The exponentials are our own (Cody-Waite reduction and a
 * polynomial, arguments <= 0, ~1 ulp) so that the loops over channels
 * vectorise.
 *
 * The parallel scan.  Channels are independent: with enough of them
 * (N >= MIN_CHANNELS per thread) each thread scans its own channels over all
 * T steps, with no barrier at all.  With few channels time is split too
 * (two-level scan): the sequence is cut into one chunk per thread; (1) every
 * chunk but the first (the forward's; the last for the backward) is reduced
 * to its decay A_c = prod a_t and its local end state L_c from zero, while the
 * first runs in full from the known start; (2) the carries combine in order,
 * s_{c+1} = A_c s_c + L_c; (3) the remaining chunks run in full from their
 * starts, their channels split among all threads.  The backward scans the
 * same way from the last chunk down.
 *
 * Subnormal numbers.  Far from the loss the backward's carries decay below
 * the smallest normal number (float32 1.2e-38) and stay there for hundreds of
 * steps when a_t is near 1 (the adding problem at T=1000: 30 % of dh), and x86
 * takes ~100 cycles for every operation on one.  So each pass runs with the
 * FTZ and DAZ bits of MXCSR set (subnormal results and operands read as 0),
 * in the thread that runs it, and restores the register before it returns.
 * What this changes is below 1e-38 (float32) or 1e-307 (float64) in absolute
 * size, so results still agree with the reference to rounding.  Elsewhere than
 * x86 the passes run with the thread's own settings.
 *
 * Lengths: step t is inside sequence b when lens == NULL or t < lens[b].  Past
 * a sequence's end a_t = 1, b_t = 0 (the state is carried), y_t = 0, dk = 0, as
 * the reference.  Conventions as _kernels.c: C-contiguous, time-major.
 *
 * The file includes itself twice (suffix _f32 for float, _f64 for double) and
 * is compiled once per instruction set (setup.py, RK_ISA names its table).
 */
#ifndef RK_TEMPLATE

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_fastrnn.h"
#ifdef _OPENMP
#include <omp.h>
#endif

/* Channels a thread needs before channels alone are split among threads, and
 * elements (steps x channels) per thread before a call uses several: a pass
 * costs ~1 ns an element on one core from k, ~2 (forward) to ~4 (backward)
 * with the projection inside, so 2^19 elements are 0.5 to 2 ms of work, what a
 * thread pays for; with less, waiting for a thread the OS has paused costs more
 * (measured on 2 busy cores: the adding problem at T=200, B=32, H=64 trained
 * 23x slower on two threads with 2^15 elements each than on one).  With 2^20,
 * minGRU at T=1000, B=32, H=64 (2^21 elements) stayed on one thread: 11.6 ms a
 * training step on two idle cores, 6.2 ms with 2^19. */
#define MIN_CHANNELS 256
#define MIN_WORK (1 << 19)

/* Subnormal results and operands as zero (FTZ | DAZ) from RK_FTZ_ON(v) until
 * RK_FTZ_OFF(v), which restores MXCSR as it was (see the top of the file). */
#if defined(__SSE2__) || defined(_M_X64)
#include <xmmintrin.h>
#define RK_FTZ_ON(v) const unsigned int v = _mm_getcsr(); _mm_setcsr(v | 0x8040u)
#define RK_FTZ_OFF(v) _mm_setcsr(v)
#else
#define RK_FTZ_ON(v) const int v = 0
#define RK_FTZ_OFF(v) (void)v
#endif

/* The arrays a loop over channels reads and writes never overlap: without
 * this GCC needs more run-time alias checks than it makes, and does not
 * vectorise the backward's loops. */
#if defined(__GNUC__) && !defined(__clang__)
#define RK_IVDEP _Pragma("GCC ivdep")
#else
#define RK_IVDEP
#endif

/* Loops over channels vectorised whatever they hold (RK_SIMD: the fused passes'
 * loops, with the sum over the inputs inside), and a sum over channels that may
 * be split into vector lanes (reassociated: dx's sums, which GCC otherwise
 * leaves scalar). */
#define RK_PRAGMA(x) _Pragma(#x)
#ifdef _OPENMP
#define RK_SIMD_SUM(v) RK_PRAGMA(omp simd reduction(+ : v))
#define RK_SIMD RK_PRAGMA(omp simd)
#else
#define RK_SIMD_SUM(v)
#define RK_SIMD RK_IVDEP
#endif

static int rk_min_threads(int64_t T, int64_t N)
{
#ifdef _OPENMP
    int64_t n = rk_serial ? 1 : omp_get_max_threads();
#else
    int64_t n = 1;
#endif
    if (rk_flops_per_thread > 0 && n > T * N / MIN_WORK) n = T * N / MIN_WORK;
    if (n > T) n = T;
    return n < 1 ? 1 : (int)n;
}

/* Always inlined: a call in a loop over channels keeps it scalar, and GCC stops
 * inlining into the passes once they are large (the fused passes' copies per I). */
#if defined(__GNUC__)
#define RK_EXP_INLINE static inline __attribute__((always_inline))
#else
#define RK_EXP_INLINE static inline
#endif

/* e^x for x <= 0 (x < -87 (float) or -708 (double) gives e^-87 or e^-708, not
 * a subnormal): n = round(x / ln 2) by the 1.5 * 2^m trick, r = x - n ln 2 in
 * two parts, e^r by its Taylor polynomial (degree 6 float, 13 double: below
 * half an ulp on |r| <= ln2 / 2), and 2^n from the bits of the rounded value. */
RK_EXP_INLINE float rk_exp_f32(float x)
{
    x = x < -87.0f ? -87.0f : x;
    const float magic = 12582912.0f;                        /* 1.5 * 2^23 */
    float t = x * 1.44269504088896341f + magic;
    float n = t - magic;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits;
    memcpy(&bits, &t, 4);
    bits = (int32_t)((uint32_t)(bits + 127) << 23);         /* 2^n: n + 127 in the exponent */
    float scale;
    memcpy(&scale, &bits, 4);
    return p * scale;
}

RK_EXP_INLINE double rk_exp_f64(double x)
{
    x = x < -708.0 ? -708.0 : x;
    const double magic = 6755399441055744.0;                /* 1.5 * 2^52 */
    double t = x * 1.4426950408889634 + magic;
    double n = t - magic;
    double r = x - n * 6.93147180369123816490e-1;
    r = r - n * 1.90821492927058770002e-10;
    double p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    int64_t bits;
    memcpy(&bits, &t, 8);
    bits = (int64_t)((uint64_t)(bits + 1023) << 52);
    double scale;
    memcpy(&scale, &bits, 8);
    return p * scale;
}

#define RK_TEMPLATE
#define R float
#define SFX(name) name##_f32
#define EXP rk_exp_f32
#include "_minscan.c"      /* this file, as the template part */
#undef R
#undef SFX
#undef EXP
#define R double
#define SFX(name) name##_f64
#define EXP rk_exp_f64
#include "_minscan.c"
#undef R
#undef SFX
#undef EXP

/* This build's table (_fastrnn.h), named after its instruction set. */
#ifndef RK_ISA
#define RK_ISA baseline
#endif
#define RK_CAT2(a, b) a##b
#define RK_CAT(a, b) RK_CAT2(a, b)
#define RK_MIN_ENTRY_F32(name, params) name##_f32,
#define RK_MIN_ENTRY_F64(name, params) name##_f64,
const rk_min_table RK_CAT(rk_min_table_, RK_ISA) = {{RK_MIN_KERNELS(RK_MIN_ENTRY_F32, float)},
                                                   {RK_MIN_KERNELS(RK_MIN_ENTRY_F64, double)}};

#else /* RK_TEMPLATE: the loops, for one real type R */

/* What a pass over one chunk of steps does. */
enum { SFX(FULL), SFX(REDUCE) };

/* The gates at one channel (inside its sequence) from its pre-activations:
 * a = 1 - z and b = z g(k_h).  Q: minGRU's k_z; KF, KI: minLSTM's k_f, k_i. */
#define RK_GATES_GRU(Q)                                                      \
    const R q = (Q);                                                         \
    const R u = EXP(q < 0 ? q : -q);                     /* e^{-|q|} */      \
    const R w = (R)1 / ((R)1 + u);                                           \
    const R z = q >= 0 ? w : u * w;                      /* sigma(q) */      \
    const R a = q >= 0 ? u * w : w;                      /* sigma(-q) */
/* z = i / (f + i) = P / (P + Q), P = 1 + e^{-k_f}, Q = 1 + e^{-k_i}, each
 * written e^{max(-k, 0)} (1 + e^{-|k|}) and scaled by the larger e^max. */
#define RK_GATES_LSTM(KF, KI)                                                \
    const R kf = (KF), ki = (KI);                                            \
    const R uf = EXP(kf < 0 ? kf : -kf), ui = EXP(ki < 0 ? ki : -ki);        \
    const R pf = (R)1 + uf, pi = (R)1 + ui;                                  \
    const R m = (ki < 0 ? -ki : 0) - (kf < 0 ? -kf : 0);                     \
    const R w = EXP(m < 0 ? m : -m);                                         \
    const R nz = m <= 0 ? pf : pf * w, na = m <= 0 ? pi * w : pi;            \
    const R inv = (R)1 / (nz + na);                                          \
    const R z = nz * inv, a = na * inv;
/* g (2): s = sigma(min(k, 0)), h~ = s + max(k, 0) */
#define RK_G(KH)                                                             \
    const R kk = (KH);                                                       \
    const R v = EXP(kk < 0 ? kk : 0);                                        \
    const R s = v / ((R)1 + v);                                              \
    const R ht = s + (kk > 0 ? kk : 0);

/* The input projection inside the scan (min_fwd_x, min_bwd_x).  wt (G, I + 1, H)
 * holds each gate block's weights transposed and its bias: wt[g, i, c] =
 * W_ih[g H + c, i] (i < I), wt[g, I, c] = b_ih[g H + c].  At channel c of batch
 * row b (its inputs xr = x[t, b]) and gate block g (its slice wg = wt[g]):
 *
 *     k_g[t, b, c] = wt[g, I, c] + sum_i x[t, b, i] wt[g, i, c]
 *
 * (k = x W_ih^T + b_ih, NumPy's product with the sums in another order: it agrees
 * to rounding).  Its terms are written out for i < 4 so that where I is a
 * constant <= 4 (RK_BY_I) the loop over channels that holds them has no inner
 * loop and no branch, which GCC needs to vectorise it. */
#define RK_PROJ(var, wg)                                                     \
    R var = (wg)[I * H + c];                                                 \
    if (I > 0) var += xr[0] * (wg)[c];                                       \
    if (I > 1) var += xr[1] * (wg)[H + c];                                   \
    if (I > 2) var += xr[2] * (wg)[2 * H + c];                               \
    if (I > 3) var += xr[3] * (wg)[3 * H + c];                               \
    for (int64_t i = 4; i < I; i++) var += xr[i] * (wg)[i * H + c];
/* acc[g, i, c] += x[t, b, i] dk_g, acc[g, I, c] += dk_g at channel c (the
 * backward's sums of dL/dW_ih and dL/db_ih; ag = acc[g]), written out as RK_PROJ */
#define RK_ACC_ADD(ag, d)                                                    \
    if (I > 0) (ag)[c] += xr[0] * (d);                                       \
    if (I > 1) (ag)[H + c] += xr[1] * (d);                                   \
    if (I > 2) (ag)[2 * H + c] += xr[2] * (d);                               \
    if (I > 3) (ag)[3 * H + c] += xr[3] * (d);                               \
    for (int64_t i = 4; i < I; i++) (ag)[i * H + c] += xr[i] * (d);          \
    (ag)[I * H + c] += (d);

/* The fused passes' work on one batch row (channels [r0, r1), bH = b H, inputs
 * xr = x[t, b]), inside its sequence.  Always inlined where I is a constant
 * (RK_BY_I): for I <= 4 the sums over i are straight-line code and the loop
 * over channels is vectorised; a larger I runs scalar (rnnkit.fast.minrnn
 * fuses only small inputs). */
#if defined(__GNUC__)
#define RK_INLINE static inline __attribute__((always_inline))
#else
#define RK_INLINE static inline
#endif
/* `RK_ROW(I)` for I = 1 .. 4 as a constant, else with I itself */
#define RK_BY_I(RK_ROW)                                                      \
    switch (I) {                                                             \
    case 1: RK_ROW(1); break;                                                \
    case 2: RK_ROW(2); break;                                                \
    case 3: RK_ROW(3); break;                                                \
    case 4: RK_ROW(4); break;                                                \
    default: RK_ROW(I); break;                                               \
    }

/* Forward: FULL writes h_t, y_t; REDUCE the chunk's A and L (see min_fwd_pass). */
RK_INLINE void SFX(min_fwd_row)(int mode, int lstm, const int64_t I, int64_t r0, int64_t r1, int64_t bH,
                                int64_t H, const R *restrict xr, const R *restrict w0,
                                const R *restrict w1, const R *restrict wl, const R *restrict prev,
                                R *restrict hn, R *restrict yt, R *restrict Lr, R *restrict Ar)
{
    if (mode == SFX(REDUCE) && lstm) {
        RK_SIMD
        for (int64_t j = r0; j < r1; j++) {
            const int64_t c = j - bH;
            RK_PROJ(p0, w0) RK_PROJ(p1, w1) RK_PROJ(p2, wl)
            RK_GATES_LSTM(p0, p1) RK_G(p2)
            Lr[j] = a * Lr[j] + z * ht;
            Ar[j] *= a;
        }
    } else if (mode == SFX(REDUCE)) {
        RK_SIMD
        for (int64_t j = r0; j < r1; j++) {
            const int64_t c = j - bH;
            RK_PROJ(p0, w0) RK_PROJ(p2, wl)
            RK_GATES_GRU(p0) RK_G(p2)
            Lr[j] = a * Lr[j] + z * ht;
            Ar[j] *= a;
        }
    } else if (lstm) {
        RK_SIMD
        for (int64_t j = r0; j < r1; j++) {
            const int64_t c = j - bH;
            RK_PROJ(p0, w0) RK_PROJ(p1, w1) RK_PROJ(p2, wl)
            RK_GATES_LSTM(p0, p1) RK_G(p2)
            const R hj = a * prev[j] + z * ht;
            hn[j] = hj;
            yt[j] = hj;
        }
    } else {
        RK_SIMD
        for (int64_t j = r0; j < r1; j++) {
            const int64_t c = j - bH;
            RK_PROJ(p0, w0) RK_PROJ(p2, wl)
            RK_GATES_GRU(p0) RK_G(p2)
            const R hj = a * prev[j] + z * ht;
            hn[j] = hj;
            yt[j] = hj;
        }
    }
}

/* Backward: REDUCE, g_t = a_t (e_t + g_{t+1}) and A; FULL, the carry, dh_all,
 * the row's dk into d0, d1, dl (by channel within the row) and dL/dW_ih, dL/db_ih
 * into a0, a1, al (see min_bwd_pass). */
RK_INLINE void SFX(min_bwd_row)(int mode, int lstm, const int64_t I, int64_t r0, int64_t r1, int64_t bH,
                                int64_t H, const R *restrict xr, const R *restrict w0,
                                const R *restrict w1, const R *restrict wl, const R *restrict hp,
                                const R *restrict et, R *restrict dha, R *restrict gj, R *restrict Aj,
                                R *restrict d0, R *restrict d1, R *restrict dl, R *restrict a0,
                                R *restrict a1, R *restrict al)
{
    if (mode == SFX(REDUCE) && lstm) {
        RK_SIMD
        for (int64_t j = r0; j < r1; j++) {
            const int64_t c = j - bH;
            RK_PROJ(p0, w0) RK_PROJ(p1, w1)
            RK_GATES_LSTM(p0, p1)
            (void)z;
            gj[j] = a * (et[j] + gj[j]);
            Aj[j] *= a;
        }
    } else if (mode == SFX(REDUCE)) {
        RK_SIMD
        for (int64_t j = r0; j < r1; j++) {
            const int64_t c = j - bH;
            RK_PROJ(p0, w0)
            RK_GATES_GRU(p0)
            (void)z;
            gj[j] = a * (et[j] + gj[j]);
            Aj[j] *= a;
        }
    } else if (lstm) {
        RK_SIMD
        for (int64_t j = r0; j < r1; j++) {
            const int64_t c = j - bH;
            RK_PROJ(p0, w0) RK_PROJ(p1, w1) RK_PROJ(p2, wl)
            const R dh = et[j] + gj[j];
            dha[j] = dh;
            RK_GATES_LSTM(p0, p1) RK_G(p2)
            const R gp = kk >= 0 ? (R)1 : s - s * s;      /* g'(k_h) */
            const R dbz = dh * z;                          /* dL/db z */
            const R dq = (ht - hp[j]) * dbz * a;           /* dL/dq */
            const R dk0 = -(dq * ((kf >= 0 ? uf : (R)1) / pf));   /* sigma(-k_f) */
            const R dk1 = dq * ((ki >= 0 ? ui : (R)1) / pi);      /* sigma(-k_i) */
            const R dk2 = dbz * gp;
            d0[c] = dk0;
            d1[c] = dk1;
            dl[c] = dk2;
            RK_ACC_ADD(a0, dk0) RK_ACC_ADD(a1, dk1) RK_ACC_ADD(al, dk2)
            gj[j] = a * dh;
        }
    } else {
        RK_SIMD
        for (int64_t j = r0; j < r1; j++) {
            const int64_t c = j - bH;
            RK_PROJ(p0, w0) RK_PROJ(p2, wl)
            const R dh = et[j] + gj[j];
            dha[j] = dh;
            RK_GATES_GRU(p0) RK_G(p2)
            const R gp = kk >= 0 ? (R)1 : s - s * s;
            const R dbz = dh * z;
            const R dk0 = (ht - hp[j]) * dbz * a, dk2 = dbz * gp;
            d0[c] = dk0;
            dl[c] = dk2;
            RK_ACC_ADD(a0, dk0) RK_ACC_ADD(al, dk2)
            gj[j] = a * dh;
        }
    }
}

/* Forward over steps [t0, t1) of channels [n0, n1), from the states `start`
 * (those channels').  FULL writes h[t + 1] and y[t]; REDUCE writes the chunk's
 * decay A and end state L (from zero) instead.  Row by row of the batch, so
 * that each row's inner loop over its channels has no branch.  The
 * pre-activations come from k (G, T, B, H), or, when x is not NULL, from x
 * (T, B, I) and wt (RK_PROJ).  Returns 0. */
static int SFX(min_fwd_pass)(int mode, int lstm, int64_t T, int64_t t0, int64_t t1, int64_t n0,
                              int64_t n1, int64_t B, int64_t H, const int64_t *lens, const R *k,
                              int64_t I, const R *x, const R *wt, const R *start, R *h, R *y, R *A,
                              R *L)
{
    const int64_t N = B * H;
    const int G = lstm ? 3 : 2;
    /* x given: wt[0], wt[1] and the last, k_h's */
    const R *restrict w0 = wt, *restrict w1 = x ? wt + (I + 1) * H : NULL;
    const R *restrict wl = x ? wt + (G - 1) * (I + 1) * H : NULL;
    RK_FTZ_ON(csr);
    for (int64_t t = t0; t < t1; t++) {
        const R *restrict kz = k + t * N, *restrict kf_ = kz, *restrict ki_ = k + (T + t) * N;
        const R *restrict kh = k + ((G - 1) * T + t) * N;
        const R *restrict prev = t == t0 ? start - n0 : h + t * N;   /* indexed by channel */
        R *restrict hn = h + (t + 1) * N, *restrict yt = y + t * N;
        R *restrict Ar = A - n0, *restrict Lr = L - n0;
        for (int64_t r0 = n0; r0 < n1;) {
            const int64_t b = r0 / H, r1 = (b + 1) * H < n1 ? (b + 1) * H : n1, bH = b * H;
            const int inside = lens == NULL || t < lens[b];
            const R *restrict xr = x == NULL ? NULL : x + (t * B + b) * I;
            if (mode == SFX(FULL) && !inside) {
                RK_IVDEP
                for (int64_t j = r0; j < r1; j++) {
                    hn[j] = prev[j];
                    yt[j] = 0;
                }
            } else if (!inside) {
            } else if (x != NULL) {
#define RK_ROW(NI) SFX(min_fwd_row)(mode, lstm, NI, r0, r1, bH, H, xr, w0, w1, wl, prev, hn, yt, Lr, Ar)
                RK_BY_I(RK_ROW)
#undef RK_ROW
            } else if (mode == SFX(REDUCE)) {
                if (lstm) {
                    RK_IVDEP
                    for (int64_t j = r0; j < r1; j++) {
                        RK_GATES_LSTM(kf_[j], ki_[j]) RK_G(kh[j])
                        Lr[j] = a * Lr[j] + z * ht;
                        Ar[j] *= a;
                    }
                } else {
                    RK_IVDEP
                    for (int64_t j = r0; j < r1; j++) {
                        RK_GATES_GRU(kz[j]) RK_G(kh[j])
                        Lr[j] = a * Lr[j] + z * ht;
                        Ar[j] *= a;
                    }
                }
            } else if (lstm) {
                RK_IVDEP
                for (int64_t j = r0; j < r1; j++) {
                    RK_GATES_LSTM(kf_[j], ki_[j]) RK_G(kh[j])
                    const R hj = a * prev[j] + z * ht;
                    hn[j] = hj;
                    yt[j] = hj;
                }
            } else {
                RK_IVDEP
                for (int64_t j = r0; j < r1; j++) {
                    RK_GATES_GRU(kz[j]) RK_G(kh[j])
                    const R hj = a * prev[j] + z * ht;
                    hn[j] = hj;
                    yt[j] = hj;
                }
            }
            r0 = r1;
        }
    }
    RK_FTZ_OFF(csr);
    return 0;
}

/* Backward over steps [t0, t1) of channels [n0, n1), down from t1 - 1, from
 * the carries g (those channels': a_{t1} dh_{t1}, or dL/dh_T), which it
 * updates to a_{t0} dh_{t0}.  FULL writes dk (and dh_all when not NULL);
 * REDUCE, from g = 0, leaves the chunk's local carry in g and multiplies A by
 * its decay.  e: d_out, or N zeros (read at every step) when y is not used.
 *
 * With x (not NULL) the pre-activations come from x and wt as in the forward,
 * and FULL writes no dk: from each row's dk (kept in a row buffer) it adds
 *
 *     acc[g, i, c] += dk_g[t, b, c] x[t, b, i]   (i < I)      dL/dW_ih
 *     acc[g, I, c] += dk_g[t, b, c]                           dL/db_ih
 *     dx[t, b, i]   = sum_g sum_c dk_g[t, b, c] W_ih[g H + c, i]
 *
 * (wx (I, G H): W_ih^T, for the last sum).  acc (G, I + 1, H) is the calling
 * thread's own; [n0, n1) must be whole rows, so no two threads write one dx.
 * Returns -1 when it could not allocate its row buffers. */
static int SFX(min_bwd_pass)(int mode, int lstm, int64_t T, int64_t t0, int64_t t1, int64_t n0,
                             int64_t n1, int64_t B, int64_t H, const int64_t *lens, const R *k,
                             int64_t I, const R *x, const R *wt, const R *wx, const R *h, const R *e,
                             int64_t e_step, R *g, R *A, R *dk, R *acc, R *dx, R *dh_all)
{
    const int64_t N = B * H;
    const int G = lstm ? 3 : 2;
    R *const gr = g - n0, *const Ar = A - n0;             /* indexed by channel */
    R *row = NULL;                           /* dh_t's row when dh_all is not wanted */
    R *dkb = NULL;                           /* the row's dk (x given) */
    if (mode == SFX(FULL) && dh_all == NULL) {
        if ((row = (R *)malloc(sizeof(R) * (size_t)(n1 - n0))) == NULL) return -1;
    }
    if (x != NULL && mode == SFX(FULL)) {
        if ((dkb = (R *)malloc(sizeof(R) * (size_t)(G * H))) == NULL) {
            free(row);
            return -1;
        }
    }
    const R *restrict w0 = wt, *restrict w1 = x ? wt + (I + 1) * H : NULL;
    const R *restrict wl = x ? wt + (G - 1) * (I + 1) * H : NULL;
    R *restrict a0 = acc, *restrict a1 = acc ? acc + (I + 1) * H : NULL;
    R *restrict al = acc ? acc + (G - 1) * (I + 1) * H : NULL;
    RK_FTZ_ON(csr);
    for (int64_t t = t1 - 1; t >= t0; t--) {
        const R *restrict kz = k + t * N, *restrict kf_ = kz, *restrict ki_ = k + (T + t) * N;
        const R *restrict kh = k + ((G - 1) * T + t) * N;
        const R *restrict hp = h + t * N, *restrict et = e + t * e_step;   /* h_{t-1}; e_t */
        R *restrict dkz = dk + t * N, *restrict dki = dk + (T + t) * N;
        R *restrict dkh = dk + ((G - 1) * T + t) * N;
        R *restrict dha = dh_all == NULL ? row - n0 : dh_all + t * N;
        R *restrict gj = gr;
        R *restrict Aj = Ar;
        for (int64_t r0 = n0; r0 < n1;) {
            const int64_t b = r0 / H, r1 = (b + 1) * H < n1 ? (b + 1) * H : n1, bH = b * H;
            const int inside = lens == NULL || t < lens[b];
            const R *restrict xr = x == NULL ? NULL : x + (t * B + b) * I;
            R *restrict d0 = dkb, *restrict d1 = dkb ? dkb + H : NULL;
            R *restrict dl = dkb ? dkb + (G - 1) * H : NULL;
            if (mode == SFX(REDUCE)) {                      /* g_t = a_t (e_t + g_{t+1}) */
                if (!inside) {
                } else if (x != NULL) {
#define RK_ROW(NI)                                                                                 \
    SFX(min_bwd_row)(mode, lstm, NI, r0, r1, bH, H, xr, w0, w1, wl, hp, et, dha, gj, Aj, d0, d1, dl, \
                     a0, a1, al)
                    RK_BY_I(RK_ROW)
                } else if (lstm) {
                    RK_IVDEP
                    for (int64_t j = r0; j < r1; j++) {
                        RK_GATES_LSTM(kf_[j], ki_[j])
                        (void)z;
                        gj[j] = a * (et[j] + gj[j]);
                        Aj[j] *= a;
                    }
                } else {
                    RK_IVDEP
                    for (int64_t j = r0; j < r1; j++) {
                        RK_GATES_GRU(kz[j])
                        (void)z;
                        gj[j] = a * (et[j] + gj[j]);
                        Aj[j] *= a;
                    }
                }
            } else if (!inside) {                           /* a = 1, e = 0, dk = 0 */
                RK_IVDEP
                for (int64_t j = r0; j < r1; j++) dha[j] = gj[j];
                if (x != NULL) {                            /* nothing into acc; dx = 0 */
                    for (int64_t i = 0; i < I; i++) dx[(t * B + b) * I + i] = 0;
                } else {
                    RK_IVDEP
                    for (int64_t j = r0; j < r1; j++) {
                        dkz[j] = 0;
                        dkh[j] = 0;
                    }
                    if (lstm)
                        RK_IVDEP
                        for (int64_t j = r0; j < r1; j++) dki[j] = 0;
                }
            } else if (x != NULL) {
                RK_BY_I(RK_ROW)
#undef RK_ROW
                for (int64_t i = 0; i < I; i++) {          /* dx: the row's dk . W_ih[:, i] */
                    const R *restrict wxi = wx + i * G * H;
                    R sum = 0;
                    RK_SIMD_SUM(sum)
                    for (int64_t c = 0; c < G * H; c++) sum += dkb[c] * wxi[c];
                    dx[(t * B + b) * I + i] = sum;
                }
            } else if (lstm) {
                RK_IVDEP
                for (int64_t j = r0; j < r1; j++) {
                    const R dh = et[j] + gj[j];
                    dha[j] = dh;
                    RK_GATES_LSTM(kf_[j], ki_[j]) RK_G(kh[j])
                    const R gp = kk >= 0 ? (R)1 : s - s * s;      /* g'(k_h) */
                    const R dbz = dh * z;                          /* dL/db z */
                    const R dq = (ht - hp[j]) * dbz * a;           /* dL/dq */
                    dkh[j] = dbz * gp;
                    dkz[j] = -(dq * ((kf >= 0 ? uf : (R)1) / pf));   /* sigma(-k_f) */
                    dki[j] = dq * ((ki >= 0 ? ui : (R)1) / pi);      /* sigma(-k_i) */
                    gj[j] = a * dh;
                }
            } else {
                RK_IVDEP
                for (int64_t j = r0; j < r1; j++) {
                    const R dh = et[j] + gj[j];
                    dha[j] = dh;
                    RK_GATES_GRU(kz[j]) RK_G(kh[j])
                    const R gp = kk >= 0 ? (R)1 : s - s * s;
                    const R dbz = dh * z;
                    dkh[j] = dbz * gp;
                    dkz[j] = (ht - hp[j]) * dbz * a;
                    gj[j] = a * dh;
                }
            }
            r0 = r1;
        }
    }
    RK_FTZ_OFF(csr);
    free(row);
    free(dkb);
    return 0;
}

/* Chunk c of nc over T steps: [T c / nc, T (c + 1) / nc). */
#define RK_CHUNK(c) (T * (c) / nc)

#ifdef _OPENMP
#define RK_FAIL _Pragma("omp atomic write") failed = 1
#else
#define RK_FAIL failed = 1
#endif

/* The forward (see the top of the file), from k or (x not NULL) from x and wt.
 * k (G, T, B, H) with G = 2 (minGRU: k_z, k_h) or 3 (lstm: k_f, k_i, k_h); h
 * (T + 1, B, H), h[0] the initial state (read), the others written; y (T, B,
 * H).  Returns -1 when it could not allocate its workspace. */
static int SFX(min_fwd_any)(int64_t T, int64_t B, int64_t H, const int64_t *lens, int lstm, const R *k,
                            int64_t I, const R *x, const R *wt, R *h, R *y)
{
    const int64_t N = B * H;
    int failed = 0;
    int nt = rk_min_threads(T, N);
    if (nt > 1 && N < nt * (int64_t)MIN_CHANNELS && nt + 1 > T) nt = (int)T - 1;
    if (nt <= 1)
        return SFX(min_fwd_pass)(SFX(FULL), lstm, T, 0, T, 0, N, B, H, lens, k, I, x, wt, h, h, y, NULL,
                                 NULL);
    if (N >= nt * (int64_t)MIN_CHANNELS) {                  /* channels alone */
#pragma omp parallel num_threads(nt)
        {
#ifdef _OPENMP
            const int64_t i = omp_get_thread_num(), n = omp_get_num_threads();
#else
            const int64_t i = 0, n = 1;
#endif
            const int64_t n0 = N * i / n, n1 = N * (i + 1) / n;
            if (SFX(min_fwd_pass)(SFX(FULL), lstm, T, 0, T, n0, n1, B, H, lens, k, I, x, wt, h + n0, h, y,
                                  NULL, NULL) < 0) RK_FAIL;
        }
        return failed ? -1 : 0;
    }
    /* two levels: nc = nt + 1 chunks; A, L of chunks 1 .. nc - 2, S the starts */
    const int nc = nt + 1;
    R *work = (R *)malloc(sizeof(R) * 3 * (size_t)nc * (size_t)N);
    if (work == NULL) return -1;
    R *A = work, *L = work + (size_t)nc * N, *S = work + 2 * (size_t)nc * N;
#pragma omp parallel num_threads(nt)
    {
#ifdef _OPENMP
        const int64_t i = omp_get_thread_num(), n = omp_get_num_threads();
#else
        const int64_t i = 0, n = 1;
#endif
        for (int64_t c = i; c < nc - 1; c += n) {           /* (1) chunk 0 in full, others reduced */
            if (c == 0) {
                if (SFX(min_fwd_pass)(SFX(FULL), lstm, T, 0, RK_CHUNK(1), 0, N, B, H, lens, k, I, x, wt, h,
                                      h, y, NULL, NULL) < 0) RK_FAIL;
                continue;
            }
            R *Ac = A + c * N, *Lc = L + c * N;
            for (int64_t j = 0; j < N; j++) Ac[j] = 1, Lc[j] = 0;
            if (SFX(min_fwd_pass)(SFX(REDUCE), lstm, T, RK_CHUNK(c), RK_CHUNK(c + 1), 0, N, B, H, lens,
                                  k, I, x, wt, NULL, h, y, Ac, Lc) < 0) RK_FAIL;
        }
#pragma omp barrier
        {                                                   /* (2) the starts, by channels */
            const int64_t n0 = N * i / n, n1 = N * (i + 1) / n;
            const R *h1 = h + RK_CHUNK(1) * N;
            for (int64_t j = n0; j < n1; j++) S[N + j] = h1[j];
            for (int64_t c = 1; c < nc - 1; c++)
                for (int64_t j = n0; j < n1; j++)
                    S[(c + 1) * N + j] = A[c * N + j] * S[c * N + j] + L[c * N + j];
        }
#pragma omp barrier
#pragma omp for schedule(static)
        for (int64_t c = 1; c < nc; c++)                   /* (3) the other chunks in full */
            if (SFX(min_fwd_pass)(SFX(FULL), lstm, T, RK_CHUNK(c), RK_CHUNK(c + 1), 0, N, B, H, lens, k,
                                  I, x, wt, S + c * N, h, y, NULL, NULL) < 0) RK_FAIL;
    }
    free(work);
    return failed ? -1 : 0;
}

static int SFX(min_fwd)(int64_t T, int64_t B, int64_t H, const int64_t *lens, int lstm, const R *k, R *h,
                        R *y)
{
    return SFX(min_fwd_any)(T, B, H, lens, lstm, k, 0, NULL, NULL, h, y);
}

/* The forward with the input projection inside (see RK_PROJ): x (T, B,
 * I), wt (G, I + 1, H); the rest as min_fwd. */
static int SFX(min_fwd_x)(int64_t T, int64_t B, int64_t H, int64_t I, const int64_t *lens, int lstm,
                          const R *x, const R *wt, R *h, R *y)
{
    return SFX(min_fwd_any)(T, B, H, lens, lstm, NULL, I, x, wt, h, y);
}

/* The backward (see the top of the file).  k and h as the forward left them;
 * d_out (T, B, H) or NULL (y not used); dh (B, H): dL/dh_T in, dL/dh_0 out;
 * dk (G, T, B, H) written; dh_all (T, B, H), the total dL/dh_t, or NULL.  With
 * x (not NULL) instead of k: no dk; dwt (G, I + 1, H) gets dL/dW_ih and
 * dL/db_ih laid out as wt (min_bwd_pass), dx (T, B, I) dL/dx. */
static int SFX(min_bwd_any)(int64_t T, int64_t B, int64_t H, const int64_t *lens, int lstm, const R *k,
                            int64_t I, const R *x, const R *wt, const R *h, const R *d_out, R *dh, R *dk,
                            R *dwt, R *dx, R *dh_all)
{
    const int64_t N = B * H;
    const int64_t nacc = (lstm ? 3 : 2) * (I + 1) * H;    /* one thread's dL/dW_ih, dL/db_ih */
    int failed = 0;                          /* a pass could not allocate its rows */
    R *zeros = NULL;
    if (d_out == NULL && (zeros = (R *)calloc((size_t)N, sizeof(R))) == NULL) return -1;
    const R *e = d_out ? d_out : zeros;
    const int64_t e_step = d_out ? N : 0;
    int nt = rk_min_threads(T, N);
    if (nt > 1 && N < nt * (int64_t)MIN_CHANNELS && nt + 1 > T) nt = (int)T - 1;
    /* the threads' sums of dL/dW_ih (the first straight into dwt); wx = W_ih^T */
    R *accs = NULL, *wx = NULL;
    if (x != NULL) {
        const int64_t G = lstm ? 3 : 2;
        memset(dwt, 0, sizeof(R) * (size_t)nacc);
        if ((nt > 1 && (accs = (R *)calloc((size_t)(nt - 1) * (size_t)nacc, sizeof(R))) == NULL) ||
            (wx = (R *)malloc(sizeof(R) * (size_t)(I * G * H))) == NULL) {
            free(accs);
            free(zeros);
            return -1;
        }
        for (int64_t i = 0; i < I; i++)
            for (int64_t g = 0; g < G; g++)
                for (int64_t c = 0; c < H; c++) wx[(i * G + g) * H + c] = wt[(g * (I + 1) + i) * H + c];
    }
#define RK_ACC(i) (x == NULL ? NULL : (i) == 0 ? dwt : accs + ((i) - 1) * nacc)
    if (nt <= 1) {
        if (SFX(min_bwd_pass)(SFX(FULL), lstm, T, 0, T, 0, N, B, H, lens, k, I, x, wt, wx, h, e, e_step, dh,
                              NULL, dk, dwt, dx, dh_all) < 0) RK_FAIL;
    } else if (N >= nt * (int64_t)MIN_CHANNELS) {
#pragma omp parallel num_threads(nt)
        {
#ifdef _OPENMP
            const int64_t i = omp_get_thread_num(), n = omp_get_num_threads();
#else
            const int64_t i = 0, n = 1;
#endif
            /* whole rows with x: dx[t, b] sums over the row's channels */
            const int64_t n0 = x ? H * (B * i / n) : N * i / n, n1 = x ? H * (B * (i + 1) / n) : N * (i + 1) / n;
            if (n1 > n0 && SFX(min_bwd_pass)(SFX(FULL), lstm, T, 0, T, n0, n1, B, H, lens, k, I, x, wt, wx, h,
                                             e, e_step, dh + n0, NULL, dk, RK_ACC(i), dx, dh_all) < 0)
                RK_FAIL;
        }
    } else {
        /* two levels, from the last chunk down: A, L of chunks 1 .. nc - 2, S the
         * carries into each chunk from above */
        const int nc = nt + 1;
        R *work = (R *)malloc(sizeof(R) * 3 * (size_t)nc * (size_t)N);
        if (work == NULL) {
            free(zeros);
            free(accs);
            free(wx);
            return -1;
        }
        R *A = work, *L = work + (size_t)nc * N, *S = work + 2 * (size_t)nc * N;
#pragma omp parallel num_threads(nt)
        {
#ifdef _OPENMP
            const int64_t i = omp_get_thread_num(), n = omp_get_num_threads();
#else
            const int64_t i = 0, n = 1;
#endif
            for (int64_t c = nc - 1 - i; c >= 1; c -= n) {      /* (1) the last chunk in full, others reduced */
                if (c == nc - 1) {
                    if (SFX(min_bwd_pass)(SFX(FULL), lstm, T, RK_CHUNK(c), T, 0, N, B, H, lens, k, I, x, wt, wx,
                                          h, e, e_step, dh, NULL, dk, RK_ACC(i), dx, dh_all) < 0) RK_FAIL;
                    continue;
                }
                R *Ac = A + c * N, *Lc = L + c * N;
                for (int64_t j = 0; j < N; j++) Ac[j] = 1, Lc[j] = 0;
                if (SFX(min_bwd_pass)(SFX(REDUCE), lstm, T, RK_CHUNK(c), RK_CHUNK(c + 1), 0, N, B, H, lens,
                                      k, I, x, wt, wx, h, e, e_step, Lc, Ac, dk, NULL, dx, dh_all) < 0) RK_FAIL;
            }
#pragma omp barrier
            {                                                   /* (2) the carries, by channels */
                const int64_t n0 = N * i / n, n1 = N * (i + 1) / n;
                for (int64_t j = n0; j < n1; j++) S[(nc - 2) * N + j] = dh[j];
                for (int64_t c = nc - 2; c >= 1; c--)
                    for (int64_t j = n0; j < n1; j++)
                        S[(c - 1) * N + j] = A[c * N + j] * S[c * N + j] + L[c * N + j];
                for (int64_t j = n0; j < n1; j++) dh[j] = S[j];        /* chunk 0 ends in dh */
            }
#pragma omp barrier
#pragma omp for schedule(static)
            for (int64_t c = 0; c < nc - 1; c++)               /* (3) the other chunks in full */
                if (SFX(min_bwd_pass)(SFX(FULL), lstm, T, RK_CHUNK(c), RK_CHUNK(c + 1), 0, N, B, H, lens, k,
                                      I, x, wt, wx, h, e, e_step, c == 0 ? dh : S + c * N, NULL, dk, RK_ACC(i),
                                      dx, dh_all) < 0) RK_FAIL;
        }
        free(work);
    }
#undef RK_ACC
    if (accs != NULL)                                       /* the threads' sums, in order */
        for (int64_t p = 0; p < nt - 1; p++)
            for (int64_t j = 0; j < nacc; j++) dwt[j] += accs[p * nacc + j];
    free(accs);
    free(wx);
    free(zeros);
    return failed ? -1 : 0;
}

static int SFX(min_bwd)(int64_t T, int64_t B, int64_t H, const int64_t *lens, int lstm, const R *k,
                        const R *h, const R *d_out, R *dh, R *dk, R *dh_all)
{
    return SFX(min_bwd_any)(T, B, H, lens, lstm, k, 0, NULL, NULL, h, d_out, dh, dk, NULL, NULL, dh_all);
}

/* The backward with the input projection inside: x (T, B, I), wt (G, I + 1, H)
 * as min_fwd_x; dwt (G, I + 1, H) written with dL/dW_ih and dL/db_ih in wt's
 * layout, dx (T, B, I) with dL/dx; the rest as min_bwd. */
static int SFX(min_bwd_x)(int64_t T, int64_t B, int64_t H, int64_t I, const int64_t *lens, int lstm,
                          const R *x, const R *wt, const R *h, const R *d_out, R *dh, R *dwt, R *dx,
                          R *dh_all)
{
    return SFX(min_bwd_any)(T, B, H, lens, lstm, NULL, I, x, wt, h, d_out, dh, NULL, dwt, dx, dh_all);
}

#undef RK_CHUNK
#undef RK_FAIL
#undef RK_GATES_GRU
#undef RK_GATES_LSTM
#undef RK_G

#endif
