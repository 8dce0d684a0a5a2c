/*
 * What the time loops of _kernels.c (the plain cells) and _variants.c (the
 * variants) share: the instruction set's vector sizes, the threads, the
 * float32 tanh, the register-blocked recurrent product over packed panels of
 * the weights, and the row helpers for lengths and outputs.
 *
 * Included twice by each of those files: once without RK_TEMPLATE (the part
 * that does not depend on the real type, guarded), and once per real type R
 * inside their template part (the functions named with SFX, static: each
 * compilation of each file has its own copy).
 *
 * The recurrent product is our own: W_hh is packed once per sequence into
 * panels of NR columns (P[p][k][0:NR], contiguous in the order the product
 * reads them) and a register-blocked kernel computes MR rows x NR columns at a
 * time with the CPU's vector FMAs (GCC/Clang vector extensions, so the same
 * source builds for AVX-512, AVX2, SSE or NEON).  For these shapes — few rows
 * (the batch), weights reused T times — this beats calling a general BLAS
 * once per step.  With fewer than PACK_MIN_ROWS rows over the whole call
 * (T * B; a generation loop calls with T = B = 1) packing does not pay and the
 * forward product reads W_hh as it is.
 *
 * Threads (OpenMP, when the compiler has it): each step's products are split
 * by columns — each thread computes its panels for every row, so it reads only
 * its share of the weights, which then stays in its own core's cache (that is
 * what makes a generation step, one row, faster on two cores) — and the
 * element-wise work by rows; two barriers a step separate the phases.  The
 * thread count is OpenMP's (OMP_NUM_THREADS), capped by the panels and, unless
 * the weights are at least SPLIT_BYTES (then the caches decide), by the work:
 * one thread per FLOPS_PER_THREAD of products per step (256 KFLOP, a few us).
 * Below that the barriers (~0.6 us each on 2 cores) cost more than the split
 * saves.  Measured on 2 cores, T=100, against one thread: inference LSTM B=16
 * H=64 0.69x, GRU 0.89x, RNN B=32 H=128 0.79x, LSTM B=32 H=128 and generation
 * H=256 0.57x; forward+backward B=32 H=128 LSTM 0.76x, GRU 0.73x, RNN 0.65x.
 * rnnkit bounds the BLAS threads while its loops and the products around them
 * run (threadpoolctl), so the two pools do not take each other's cores.
 *
 * Conventions: arrays are C-contiguous, time-major; `lens` is NULL (every
 * sequence has all T steps) or B int64 lengths in [1, T]: step t (0-based) is
 * inside sequence b when t < lens[b].  Past a sequence's end the state is
 * carried unchanged, the output is 0 and the cached gates hold what the cell
 * computed there (as the reference does).
 *
 * float32 uses a rational tanh (max error 6 ulp, 3.5e-7 absolute) that the
 * compiler vectorises; float64 uses libm's tanh so that it agrees with the
 * reference to ~1e-15.  sigma(x) = tanh(x/2)/2 + 1/2 in both, as the reference.
 *
 * Every function of _kernels.c and _variants.c is compiled twice from the
 * template part at the end of its file (the file includes itself with
 * RK_TEMPLATE 32, then 64; this header's template part then defines R, SFX,
 * TANH and SIGMOID): suffix _f32 for float, _f64 for double.  Each file is
 * compiled once per instruction set (setup.py: baseline, and on x86-64
 * AVX2+FMA and AVX-512), each compilation naming its table of loops
 * (_fastrnn.h) after its set (RK_ISA); the extension module _fastrnn.c picks
 * the best one the CPU runs when it loads.
 */
#ifndef RK_COMMON_H
#define RK_COMMON_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_fastrnn.h"
#ifdef _OPENMP
#include <omp.h>
#endif

/* Bytes per vector register and vectors per panel row; the kernel keeps
 * MR x NV accumulators, NV panel vectors and one broadcast in registers
 * (32 registers with AVX-512 and on AArch64, 16 otherwise). */
#if defined(__AVX512F__)
#define RK_VB 64
#define RK_NV 4
#define RK_MR 6
#elif defined(__AVX__)
#define RK_VB 32
#define RK_NV 3
#define RK_MR 4
#elif defined(__aarch64__)
#define RK_VB 16
#define RK_NV 4
#define RK_MR 6
#else
#define RK_VB 16
#define RK_NV 3
#define RK_MR 4
#endif
#define PACK_MIN_ROWS 4
#define SPLIT_BYTES (1 << 19)

/* A barrier among a loop's threads, and nothing when it runs on one (GNU OpenMP
 * would still pay for one: ~0.3 us, 400 of them in a 200-step forward). */
#define RK_BARRIER(nt)                      \
    do {                                    \
        if ((nt) > 1) {                     \
            _Pragma("omp barrier")          \
        }                                   \
    } while (0)

/* How many threads a sequence may use (1 without OpenMP or after a fork). */
static int rk_max_threads(void)
{
#ifdef _OPENMP
    return rk_serial ? 1 : omp_get_max_threads();
#else
    return 1;
#endif
}

/* Threads for a loop whose steps each do `flops` of products with `bytes` of
 * weights split into `panels` column panels. */
static int rk_threads(int64_t flops, int64_t bytes, int64_t panels)
{
    int64_t n = rk_max_threads();
    if (rk_flops_per_thread > 0 && bytes < SPLIT_BYTES) {
        const int64_t by_work = flops / rk_flops_per_thread;
        if (n > by_work) n = by_work;
    }
    if (n > panels) n = panels;
    return n < 1 ? 1 : (int)n;
}

/* This thread's rows [*b0, *b1) of B: the sequences of a batch are independent,
 * so each thread runs the whole time loop on its own rows, with no barrier
 * between steps (a thread the OS pauses then delays only its own rows). */
static void rk_rows(int64_t B, int64_t *b0, int64_t *b1)
{
#ifdef _OPENMP
    const int64_t n = omp_get_num_threads(), i = omp_get_thread_num();
#else
    const int64_t n = 1, i = 0;
#endif
    *b0 = B * i / n;
    *b1 = B * (i + 1) / n;
}

#include "_tanh.h"
static inline double rk_tanh_f64(double x) { return tanh(x); }
static inline double rk_sigmoid_f64(double x) { return 0.5 * tanh(0.5 * x) + 0.5; }

/* This build's tables (_fastrnn.h) are named after its instruction set. */
#ifndef RK_ISA
#define RK_ISA baseline
#endif
#define RK_CAT2(a, b) a##b
#define RK_CAT(a, b) RK_CAT2(a, b)
#define RK_STR2(a) #a
#define RK_STR(a) RK_STR2(a)

#endif /* RK_COMMON_H */

#ifdef RK_TEMPLATE   /* the part for one real type R: float (32) or double (64) */

#undef R
#undef IR
#undef SFX
#undef TANH
#undef SIGMOID
#undef VEC
#undef VW
#undef NR
#undef PANELS
#if RK_TEMPLATE == 32
#define R float
#define IR int32_t
#define SFX(name) name##_f32
#define TANH rk_tanh_f32
#define SIGMOID rk_sigmoid_f32
#else
#define R double
#define IR int64_t
#define SFX(name) name##_f64
#define TANH rk_tanh_f64
#define SIGMOID rk_sigmoid_f64
#endif

typedef R SFX(vec) __attribute__((vector_size(RK_VB), aligned(sizeof(R))));
#define VEC SFX(vec)
#define VW ((int64_t)(RK_VB / sizeof(R)))     /* elements per vector */
#define NR (RK_NV * VW)                        /* columns per panel */

/* ------------------------------------------------------- the recurrent product -- */

/* Pack panel p of the right operand of C = A @ Bop, Bop (K, N): P[p][k][j] =
 * Bop[k][p*NR + j], zero past N.  Bop = W^T for W (N, K) when `trans`, else
 * Bop = W (K, N); W's rows are ldw elements apart (K, or N, for a whole W; more
 * for a slice of its depths). */
static void SFX(pack_panel)(int64_t K, int64_t N, const R *w, int64_t ldw, int trans, R *P,
                            int64_t p)
{
    R *Pp = P + p * K * NR;
    const int64_t nc = N - p * NR < NR ? N - p * NR : NR;
    if (!trans) {                             /* row k of the panel is contiguous in W */
        for (int64_t k = 0; k < K; k++) {
            const R *src = w + k * ldw + p * NR;
            R *dst = Pp + k * NR;
            for (int64_t j = 0; j < nc; j++) dst[j] = src[j];
            for (int64_t j = nc; j < NR; j++) dst[j] = 0;
        }
        return;
    }
    for (int64_t j = 0; j < NR; j++) {
        const int64_t n = p * NR + j;
        if (n >= N)
            for (int64_t k = 0; k < K; k++) Pp[k * NR + j] = 0;
        else                                  /* a row of W is a column of W^T */
            for (int64_t k = 0; k < K; k++) Pp[k * NR + j] = w[n * ldw + k];
    }
}

/* C[0:mr, 0:nc] = (C +) A[0:mr, :] @ Pp for mr <= RK_MR rows (element (r, k) of
 * A at A[r*lda + k*ks], row r of C at C + r*ldc) and one packed panel Pp (K, NR).
 * mr and ks are constants at each call, so the loops unroll and the
 * accumulators live in registers. */
static inline __attribute__((always_inline)) void
SFX(micro)(const int mr, int64_t nc, int64_t K, const R *A, int64_t lda, const int64_t ks,
           const R *Pp, R *C, int64_t ldc, int accumulate)
{
    VEC acc[RK_MR][RK_NV];
    const R *a[RK_MR];
#pragma GCC unroll 8
    for (int r = 0; r < RK_MR; r++) {                   /* rows past mr: never read */
        a[r] = A + (r < mr ? r : 0) * lda;
#pragma GCC unroll 8
        for (int v = 0; v < RK_NV; v++) acc[r][v] = (VEC){0};
    }
    for (int64_t k = 0; k < K; k++) {
        VEC bv[RK_NV];
#pragma GCC unroll 8
        for (int v = 0; v < RK_NV; v++) bv[v] = *(const VEC *)(Pp + k * NR + v * VW);
#pragma GCC unroll 8
        for (int r = 0; r < mr; r++) {
            const VEC x = a[r][k * ks] - (VEC){0};     /* broadcast (x - 0 == x exactly) */
#pragma GCC unroll 8
            for (int v = 0; v < RK_NV; v++) acc[r][v] += x * bv[v];
        }
    }
    for (int r = 0; r < mr; r++) {
        R *c = C + r * ldc;
        if (nc == NR) {
            for (int v = 0; v < RK_NV; v++) {
                VEC *cv = (VEC *)(c + v * VW);
                *cv = accumulate ? *cv + acc[r][v] : acc[r][v];
            }
        } else {                                        /* the last, partial panel */
            R tmp[NR];
            for (int v = 0; v < RK_NV; v++) *(VEC *)(tmp + v * VW) = acc[r][v];
            for (int64_t j = 0; j < nc; j++) c[j] = accumulate ? c[j] + tmp[j] : tmp[j];
        }
    }
}

/* Columns of panel p of C (M, N) = (C +) A (M, K) @ Bop, Bop packed in P. */
static void SFX(gemm_panel)(int64_t M, int64_t N, int64_t K, const R *A, int64_t lda,
                            const R *P, int64_t p, R *C, int64_t ldc, int accumulate)
{
    const int64_t nc = N - p * NR < NR ? N - p * NR : NR;
    const R *Pp = P + p * K * NR;
    int64_t m = 0;
    for (; m + RK_MR <= M; m += RK_MR)
        SFX(micro)(RK_MR, nc, K, A + m * lda, lda, 1, Pp, C + m * ldc + p * NR, ldc,
                   accumulate);
    /* the rows left over, in blocks of 4, 2 and 1 */
    if (RK_MR > 4 && m + 4 <= M) {
        SFX(micro)(4, nc, K, A + m * lda, lda, 1, Pp, C + m * ldc + p * NR, ldc, accumulate);
        m += 4;
    }
    if (m + 2 <= M) {
        SFX(micro)(2, nc, K, A + m * lda, lda, 1, Pp, C + m * ldc + p * NR, ldc, accumulate);
        m += 2;
    }
    if (m < M)
        SFX(micro)(1, nc, K, A + m * lda, lda, 1, Pp, C + m * ldc + p * NR, ldc, accumulate);
}

/* The sum of a vector's lanes, as a tree (depth log2 VW, not a chain of VW adds). */
static inline R SFX(hsum)(VEC v)
{
    R t[VW];
    memcpy(t, &v, sizeof t);
#pragma GCC unroll 8
    for (int64_t w = VW / 2; w > 0; w /= 2)
#pragma GCC unroll 8
        for (int64_t l = 0; l < w; l++) t[l] += t[l + w];
    return t[0];
}

#if defined(__GNUC__) && !defined(__clang__)
typedef IR SFX(ivec) __attribute__((vector_size(RK_VB)));

/* The lanes of VW vectors summed at once, r[i] = sum of s[i]'s lanes, by a
 * transposing tree (s is overwritten).  Each level pairs the vectors up and
 * halves the lanes per sum: from s[2j] = [a_0 .. a_(w-1)] (per sum, w lanes) and
 * s[2j+1], s[j] = [a_0 + a_(w/2), ..] for s[2j]'s sums, then those of s[2j+1]:
 * two shuffles and one add per pair, log2(VW) levels, 2 (VW - 1) shuffles in all
 * instead of VW separate trees (GNU C's __builtin_shuffle). */
static inline VEC SFX(sum_lanes)(VEC *s)
{
#pragma GCC unroll 8
    for (int64_t w = VW, n = VW; w > 1; w /= 2, n /= 2) {
        SFX(ivec) lo, hi;
#pragma GCC unroll 16
        for (int64_t i = 0; i < VW; i++) {
            const int64_t ii = i % (VW / 2);
            lo[i] = (IR)((i < VW / 2 ? 0 : VW) + ii / (w / 2) * w + ii % (w / 2));
            hi[i] = lo[i] + (IR)(w / 2);
        }
#pragma GCC unroll 8
        for (int64_t j = 0; j < n / 2; j++)
            s[j] = __builtin_shuffle(s[2 * j], s[2 * j + 1], lo) +
                   __builtin_shuffle(s[2 * j], s[2 * j + 1], hi);
    }
    return s[0];
}
#else
static inline VEC SFX(sum_lanes)(VEC *s)
{
    VEC r;
    for (int64_t i = 0; i < VW; i++) r[i] = SFX(hsum)(s[i]);
    return r;
}
#endif

/* Columns [n0, n1) of C (M, N) = (C +) A (M, K) @ W^T for W (N, K) unpacked
 * (short sequences: packing W would cost more than the product): dot products
 * of rows, VW columns at a time in VW vector accumulators summed across their
 * lanes together (sum_lanes).  A last, partial group reads row n again in place
 * of the rows past n1 and stores only its own columns. */
static void SFX(gemm_nt)(int64_t M, int64_t N, int64_t K, const R *A, const R *W, R *C,
                         int accumulate, int64_t n0, int64_t n1)
{
    const int64_t kv = K - K % VW;
    for (int64_t m = 0; m < M; m++) {
        const R *a = A + m * K;
        R *c = C + m * N;
        for (int64_t n = n0; n < n1; n += VW) {
            const int64_t nn = n1 - n < VW ? n1 - n : VW;
            const R *w[VW];
            VEC s[VW];
#pragma GCC unroll 16
            for (int64_t i = 0; i < VW; i++) {
                w[i] = W + (n + (i < nn ? i : 0)) * K;
                s[i] = (VEC){0};
            }
            for (int64_t k = 0; k < kv; k += VW) {
                const VEC x = *(const VEC *)(a + k);
#pragma GCC unroll 16
                for (int64_t i = 0; i < VW; i++) s[i] += x * *(const VEC *)(w[i] + k);
            }
            VEC r = SFX(sum_lanes)(s);
            for (int64_t i = 0; i < nn && kv < K; i++)
                for (int64_t k = kv; k < K; k++) r[i] += a[k] * w[i][k];
            if (nn == VW) {
                if (accumulate) r += *(const VEC *)(c + n);
                *(VEC *)(c + n) = r;
            } else {
                for (int64_t i = 0; i < nn; i++) c[n + i] = accumulate ? c[n + i] + r[i] : r[i];
            }
        }
    }
}

/* W packed for C = A @ W^T (forward, `trans`) or C = A @ W (backward), or NULL
 * when the forward should read W unpacked (short sequences) or memory is short. */
static R *SFX(packed_alloc)(int64_t K, int64_t N, int want)
{
    if (!want) return NULL;
    return (R *)malloc((size_t)((N + NR - 1) / NR) * (size_t)K * (size_t)NR * sizeof(R));
}

#define PANELS(N) (((N) + NR - 1) / NR)

/* Panels [p0, p1) (columns p0*NR up to p1*NR) of C (M, N) (+)= A (M, K) @ W^T for
 * W (N, K): from the packed panels P of W^T, or from W itself when P is NULL. */
static void SFX(product_t)(int64_t M, int64_t N, int64_t K, const R *A, const R *W,
                           const R *P, R *C, int accumulate, int64_t p0, int64_t p1)
{
    if (P) {
        for (int64_t p = p0; p < p1; p++)
            SFX(gemm_panel)(M, N, K, A, K, P, p, C, N, accumulate);
        return;
    }
    const int64_t n0 = p0 * NR, n1 = p1 * NR < N ? p1 * NR : N;
    if (n0 < n1) SFX(gemm_nt)(M, N, K, A, W, C, accumulate, n0, n1);
}

/* Panels [p0, p1) of C (M, N) += A (M, K) @ W for W (K, N), from its packed panels P. */
static void SFX(product_n)(int64_t M, int64_t N, int64_t K, const R *A, const R *P, R *C,
                           int64_t p0, int64_t p1)
{
    for (int64_t p = p0; p < p1; p++)
        SFX(gemm_panel)(M, N, K, A, K, P, p, C, N, 1);
}

/* Inside a parallel region: pack all panels of Bop (K, N), shared out (the
 * implicit barrier at the end makes them visible to every thread). */
static void SFX(pack_all)(int64_t K, int64_t N, const R *w, int trans, R *P)
{
#pragma omp for schedule(static)
    for (int64_t p = 0; p < (N + NR - 1) / NR; p++) SFX(pack_panel)(K, N, w, trans ? K : N, trans, P, p);
}

/* ------------------------------------------------------------ element-wise rows -- */

/* The element-wise work of one row (one sequence of the batch) lives in small
 * inline functions whose arguments are `restrict`: that is what lets the
 * compiler vectorise them (the same loops written on pointers into one array
 * are not). */

static inline void SFX(add_row)(int64_t n, R *restrict dst, const R *restrict src)
{
    for (int64_t j = 0; j < n; j++) dst[j] += src[j];
}

/* The backward equations of cells/gru.py for one row inside its sequence:
 * dh = dh_t in, z_t dh_t out (the direct path into h_{t-1}). */
static inline void SFX(gru_row_bwd)(int64_t H, const R *restrict r_, const R *restrict z_,
                                    const R *restrict n_, const R *restrict hn,
                                    const R *restrict hp, R *restrict dh,
                                    R *restrict dar, R *restrict daz, R *restrict dan,
                                    R *restrict dur, R *restrict duz, R *restrict dun)
{
    for (int64_t j = 0; j < H; j++) {
        const R r = r_[j], z = z_[j], n = n_[j], d = dh[j];
        /* through h = (1 - z) n + z h_{t-1}: into n and z */
        const R dn = d * (1 - z);
        const R dzv = d * (hp[j] - n);
        /* through n = tanh(a_n + r u_n): into a_n, u_n and r */
        const R da_n = dn * (1 - n * n);
        const R dr = da_n * hn[j] * (r * (1 - r));
        const R dz = dzv * (z * (1 - z));
        dar[j] = dr; dur[j] = dr;
        daz[j] = dz; duz[j] = dz;
        dan[j] = da_n;
        dun[j] = da_n * r;
        dh[j] = d * z;                                /* straight into h_{t-1} */
    }
}

/* y_t = h_t inside the sequence, 0 past its end (then h_t = h_{t-1} and, for
 * the LSTM, c_t = c_{t-1}: the state is carried). */
static inline void SFX(finish_row)(int64_t H, int inside, R *h_next, const R *h_prev,
                                   R *c_next, const R *c_prev, R *y)
{
    if (!inside) {
        memcpy(h_next, h_prev, (size_t)H * sizeof(R));
        if (c_next) memcpy(c_next, c_prev, (size_t)H * sizeof(R));
    }
    if (y) {
        if (inside) memcpy(y, h_next, (size_t)H * sizeof(R));
        else memset(y, 0, (size_t)H * sizeof(R));
    }
}

/* dh_t = dh_t^(rec) + m_t dL/dy_t for one row, kept in dh_all when asked. */
static inline void SFX(dh_row)(int64_t H, int inside, R *dh, const R *d_out, R *dh_all)
{
    if (inside && d_out) SFX(add_row)(H, dh, d_out);
    if (dh_all) memcpy(dh_all, dh, (size_t)H * sizeof(R));
}

/* The input side of a loop.  Given x (T, B, I) and W_ih (N, I), each step
 * projects its own inputs, a_t = x_t @ W_ih^T, just before the recurrent product
 * adds to it — while a_t is in the cache, and with W_ih packed once per call like
 * W_hh (unpacked for fewer than PACK_MIN_ROWS rows).  With x NULL the caller has
 * projected all steps already. */
static R *SFX(input_panels)(int64_t T, int64_t B, int64_t I, int64_t N, const R *x)
{
    return SFX(packed_alloc)(I, N, x && T * B >= PACK_MIN_ROWS);
}

/* Panels [p0, p1) of at (B, N) = x_t @ W_ih^T; nothing when x is NULL. */
static void SFX(project_step)(int64_t t, int64_t B, int64_t I, int64_t N, const R *x,
                              const R *w_ih, const R *P_ih, R *at, int64_t p0, int64_t p1)
{
    if (x) SFX(product_t)(B, N, I, x + t * B * I, w_ih, P_ih, at, 0, p0, p1);
}

/* Every loop below runs its steps in two phases, split among the threads in
 * two ways: the matrix products by columns (each thread its panels, for all
 * rows: it reads only its share of the weights, which then stays in its core's
 * cache), the element-wise work by rows (each thread its sequences).  A barrier
 * separates the phases; with one thread both are whole and the barriers cost
 * nothing. */


#endif /* RK_TEMPLATE */
