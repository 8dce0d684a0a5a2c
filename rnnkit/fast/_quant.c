/*
 * Inference with int8 weights: the RNN, LSTM and GRU loops of _kernels.c with
 * every product by W_ih and W_hh read from int8 copies (rnnkit.layers.quantized
 * makes them; its NumPy functions are the reference these loops equal).
 *
 * Weights, per output channel n (a row of W, G*H rows):  W[n, k] ~ s_w[n] Q[n, k],
 *   s_w[n] = max_k |W[n, k]| / 127,  Q = rint(W / s_w) in [-127, 127] (int8).
 * Inputs, per row of the batch at every step (x_t, and h_{t-1}, each its own):
 *   s = max_k |v_k| / qmax(K),  q = rint(v * (qmax(K) / max|v|)) (int16),
 *   qmax(K) = min(32767, (2^31 - 1) / (127 K)), so no int32 sum can overflow.
 * A product is then exact integer arithmetic, scaled once per output:
 *   (v W^T)[n] ~ float(sum_k q_k Q[n, k]) * (s_w[n] * s) + b[n]
 * (float32, in this order, each operation rounded: this file is compiled
 * without contracting a * b + c into one FMA, so NumPy's float32 arithmetic
 * gives the same bits).  The weights' error dominates: the inputs keep 15 bits.
 *
 * Q is stored in panels of 16 output channels (rq_product), its columns padded
 * to a multiple of RK_QALIGN with zeros, and the quantized inputs are
 * zero-padded alike, so the products need no tail.
 * A generation step reads G*H*(I + H) bytes per layer instead of 4x that.
 *
 * The products of int16 inputs with int8 weights: AVX-512BW sign-extends 32
 * weights to int16 and multiplies-and-adds pairs into int32 (VNNI's vpdpwssd
 * where the CPU has it, else vpmaddwd + vpaddd), AVX2 16 at a time, and the
 * portable loop (the baseline build) leaves it to the compiler.
 *
 * Threads (qstack_inf): each takes a range of hidden channels j, in whole panels,
 * and computes those channels of every gate, so it runs its channels' gate
 * arithmetic too and the only meeting is one barrier per step (the next step
 * quantizes the whole new h).  New states go to one of two buffers in turn, so
 * a thread that is ahead never writes the h another still reads.  Every output
 * is computed by the same operations on one thread or several: the same bits.
 * (A generation step, 2 layers at H = 256, B = 1: 21.5 us on one thread of the
 * 2-core EPYC, about 12 on two.)
 *
 * This file has two parts: with RK_ISA defined (setup.py compiles it once per
 * instruction set, like _kernels.c) the loops and this build's table; without
 * (compiled with _fastrnn.c into the module) the module functions qmatvec and
 * qstack_inf, which run the table of the instruction set _fastrnn.c chose.
 */
#ifdef RK_ISA

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_fastrnn.h"
#if defined(__AVX2__)
#include <immintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#include "_tanh.h"

/* ---------------------------------------------------------- the int8 product -- */

/* The weights Q (N, K) are stored in panels of RQ_NP = 16 output channels: panel
 * p holds, for each pair of columns (2j, 2j+1), the 16 channels' two weights
 * side by side, P[p][j][r][0:2] = Q[16p + r][2j : 2j+2] (zero past N and K;
 * K padded to Kp, a multiple of RK_QALIGN).  Each pair of int16 inputs
 * (q_2j, q_2j+1), read as one int32 and broadcast, then meets all 16 channels'
 * pairs in one multiply-and-add of pairs into 16 int32 lanes, one per channel:
 * no sum across lanes, and the products are exact. */
#define RQ_NP 16

#if defined(__AVX512BW__)
#define RQ_LOAD16(P) _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(P)))
#define RQ_MADD(s, w, x) _mm512_add_epi32((s), _mm512_madd_epi16((w), (x)))
#define RQ_DPWSSD(s, w, x) _mm512_dpwssd_epi32((s), (w), (x))
/* acc[0:16] = the panel Pp's 16 channels times q (Kp int16), with `OP` the
 * multiply-and-add of pairs (vpmaddwd + vpaddd, or VNNI's vpdpwssd). */
#define RQ_PANEL_512(OP)                                                                          \
    {                                                                                            \
        __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;                          \
        for (int64_t j = 0; j < Kp / 2; j += 4) {                                                \
            const int8_t *w = Pp + j * 2 * RQ_NP;                                                \
            int32_t x[4];                                                                        \
            memcpy(x, q + 2 * j, sizeof x);                                                      \
            s0 = OP(s0, RQ_LOAD16(w), _mm512_set1_epi32(x[0]));                                  \
            s1 = OP(s1, RQ_LOAD16(w + 2 * RQ_NP), _mm512_set1_epi32(x[1]));                      \
            s2 = OP(s2, RQ_LOAD16(w + 4 * RQ_NP), _mm512_set1_epi32(x[2]));                      \
            s3 = OP(s3, RQ_LOAD16(w + 6 * RQ_NP), _mm512_set1_epi32(x[3]));                      \
        }                                                                                        \
        s0 = _mm512_add_epi32(_mm512_add_epi32(s0, s1), _mm512_add_epi32(s2, s3));               \
        _mm512_storeu_si512((void *)acc, s0);                                                    \
    }

static void rq_panel_madd(int64_t Kp, const int8_t *Pp, const int16_t *q, int32_t *acc)
    RQ_PANEL_512(RQ_MADD)

__attribute__((target("avx512vnni,avx512bw,avx512f"))) static void
rq_panel_vnni(int64_t Kp, const int8_t *Pp, const int16_t *q, int32_t *acc)
    RQ_PANEL_512(RQ_DPWSSD)

static void rq_panel(int64_t Kp, const int8_t *Pp, const int16_t *q, int32_t *acc)
{
    static int vnni = -1;          /* whether this CPU has AVX512-VNNI: asked once */
    if (vnni < 0) {
        __builtin_cpu_init();
        vnni = __builtin_cpu_supports("avx512vnni") ? 1 : 0;
    }
    if (vnni) rq_panel_vnni(Kp, Pp, q, acc);
    else rq_panel_madd(Kp, Pp, q, acc);
}
#elif defined(__AVX2__)
#define RQ_LOAD8(P) _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(P)))
static void rq_panel(int64_t Kp, const int8_t *Pp, const int16_t *q, int32_t *acc)
{
    __m256i lo0 = _mm256_setzero_si256(), hi0 = lo0, lo1 = lo0, hi1 = lo0;
    for (int64_t j = 0; j < Kp / 2; j += 2) {
        const int8_t *w = Pp + j * 2 * RQ_NP;
        int32_t x[2];
        memcpy(x, q + 2 * j, sizeof x);
        const __m256i x0 = _mm256_set1_epi32(x[0]), x1 = _mm256_set1_epi32(x[1]);
        lo0 = _mm256_add_epi32(lo0, _mm256_madd_epi16(RQ_LOAD8(w), x0));
        hi0 = _mm256_add_epi32(hi0, _mm256_madd_epi16(RQ_LOAD8(w + RQ_NP), x0));
        lo1 = _mm256_add_epi32(lo1, _mm256_madd_epi16(RQ_LOAD8(w + 2 * RQ_NP), x1));
        hi1 = _mm256_add_epi32(hi1, _mm256_madd_epi16(RQ_LOAD8(w + 3 * RQ_NP), x1));
    }
    _mm256_storeu_si256((__m256i *)acc, _mm256_add_epi32(lo0, lo1));
    _mm256_storeu_si256((__m256i *)(acc + 8), _mm256_add_epi32(hi0, hi1));
}
/* acc[0:32] = the panels P0 and P1 (32 channels) times q: each broadcast pair of
 * inputs meets both panels, and eight independent sums keep the multipliers busy
 * (1.7x rq_panel's rate on a generation step's 0.8 MB of weights, 2-core EPYC). */
#define RQ_PANEL2 1
static void rq_panel2(int64_t Kp, const int8_t *P0, const int8_t *P1, const int16_t *q, int32_t *acc)
{
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (int64_t j = 0; j < Kp / 2; j += 2) {
        const int8_t *w = P0 + j * 2 * RQ_NP, *v = P1 + j * 2 * RQ_NP;
        int32_t x[2];
        memcpy(x, q + 2 * j, sizeof x);
        const __m256i x0 = _mm256_set1_epi32(x[0]), x1 = _mm256_set1_epi32(x[1]);
        a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(RQ_LOAD8(w), x0));
        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(RQ_LOAD8(w + RQ_NP), x0));
        a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(RQ_LOAD8(w + 2 * RQ_NP), x1));
        a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(RQ_LOAD8(w + 3 * RQ_NP), x1));
        b0 = _mm256_add_epi32(b0, _mm256_madd_epi16(RQ_LOAD8(v), x0));
        b1 = _mm256_add_epi32(b1, _mm256_madd_epi16(RQ_LOAD8(v + RQ_NP), x0));
        b2 = _mm256_add_epi32(b2, _mm256_madd_epi16(RQ_LOAD8(v + 2 * RQ_NP), x1));
        b3 = _mm256_add_epi32(b3, _mm256_madd_epi16(RQ_LOAD8(v + 3 * RQ_NP), x1));
    }
    _mm256_storeu_si256((__m256i *)acc, _mm256_add_epi32(a0, a2));
    _mm256_storeu_si256((__m256i *)(acc + 8), _mm256_add_epi32(a1, a3));
    _mm256_storeu_si256((__m256i *)(acc + 16), _mm256_add_epi32(b0, b2));
    _mm256_storeu_si256((__m256i *)(acc + 24), _mm256_add_epi32(b1, b3));
}
#else
static void rq_panel(int64_t Kp, const int8_t *Pp, const int16_t *q, int32_t *acc)
{
    int32_t s[RQ_NP] = {0};
    for (int64_t j = 0; j < Kp / 2; j++) {
        const int8_t *w = Pp + j * 2 * RQ_NP;
        const int32_t x0 = q[2 * j], x1 = q[2 * j + 1];
        for (int r = 0; r < RQ_NP; r++) s[r] += w[2 * r] * x0 + w[2 * r + 1] * x1;
    }
    memcpy(acc, s, sizeof s);
}
#endif

/* The largest |q| for inputs of depth K: K * 127 * qmax stays below 2^31. */
static int32_t rq_qmax(int64_t K)
{
    const int64_t q = (int64_t)2147483647 / (127 * (K > 0 ? K : 1));
    return (int32_t)(q < 32767 ? (q < 1 ? 1 : q) : 32767);
}

/* q[0:Kp) = the row v[0:K) quantized (zeros past K); returns its scale. */
static float rq_quantize_row(int64_t K, int64_t Kp, int32_t qmax, const float *v, int16_t *q)
{
    float m = 0.0f;
    for (int64_t k = 0; k < K; k++) {
        const float a = fabsf(v[k]);
        m = a > m ? a : m;
    }
    if (!(m > 0.0f)) {
        memset(q, 0, (size_t)Kp * sizeof *q);
        return 0.0f;
    }
    const float inv = (float)qmax / m;
    for (int64_t k = 0; k < K; k++) q[k] = (int16_t)rintf(v[k] * inv);
    memset(q + K, 0, (size_t)(Kp - K) * sizeof *q);
    return m / (float)qmax;
}

/* Channels [n0, n1) of y (M rows, ldy apart) = dequantised (q (M, Kp) Q^T) + bias
 * for rows with scales sx (M), weights Q (N, K) in panels (Kp columns) with
 * scales sw (N); bias (N) or NULL; n0 a multiple of RQ_NP, n1 <= N. */
static void rq_product(int64_t M, int64_t n0, int64_t n1, int64_t ldy, int64_t Kp, const int16_t *q,
                       const float *sx, const int8_t *Q, const float *sw, const float *bias, float *y)
{
    int32_t acc[2 * RQ_NP];
    for (int64_t p = n0 / RQ_NP; p * RQ_NP < n1;) {
        const int64_t c0 = p * RQ_NP;
#ifdef RQ_PANEL2
        const int64_t np = n1 - c0 > RQ_NP ? 2 : 1;    /* two panels at once (the last is zero-padded) */
#else
        const int64_t np = 1;
#endif
        const int64_t nr = n1 - c0 < np * RQ_NP ? n1 - c0 : np * RQ_NP;
        for (int64_t m = 0; m < M; m++) {
#ifdef RQ_PANEL2
            if (np == 2) rq_panel2(Kp, Q + p * RQ_NP * Kp, Q + (p + 1) * RQ_NP * Kp, q + m * Kp, acc);
            else
#endif
            rq_panel(Kp, Q + p * RQ_NP * Kp, q + m * Kp, acc);
            float *ym = y + m * ldy;
            for (int64_t r = 0; r < nr; r++) {
                const float v = (float)acc[r] * (sw[c0 + r] * sx[m]);
                ym[c0 + r] = bias ? v + bias[c0 + r] : v;
            }
        }
        p += np;
    }
}

static int64_t rq_padded(int64_t K) { return (K + RK_QALIGN - 1) / RK_QALIGN * RK_QALIGN; }

/* y (M, N) = x (M, K) W^T + bias through the int8 weights Q (N, Kp), scales sw (N). */
static int qmatvec(int64_t M, int64_t N, int64_t K, const float *x, const int8_t *Q,
                   const float *sw, const float *bias, float *y)
{
    const int64_t Kp = rq_padded(K);
    const int32_t qmax = rq_qmax(K);
    int16_t *q = malloc((size_t)(M * Kp) * sizeof *q);
    float *sx = malloc((size_t)M * sizeof *sx);
    if (!q || !sx) {
        free(q);
        free(sx);
        return -1;
    }
    for (int64_t m = 0; m < M; m++) sx[m] = rq_quantize_row(K, Kp, qmax, x + m * K, q + m * Kp);
    rq_product(M, 0, N, N, Kp, q, sx, Q, sw, bias, y);
    free(q);
    free(sx);
    return 0;
}

/* ----------------------------------------------------------------- the loops -- */

/* One row's gate arithmetic for n channels (a, u: gate g of channel j at
 * g*H + j; restrict arguments: the loops vectorise); h the state before the
 * step, hn after it. */
static inline void rq_lstm_row(int64_t n, int64_t H, const float *restrict a, const float *restrict u,
                               float *restrict c, float *restrict hn, float *restrict y)
{
    for (int64_t j = 0; j < n; j++) {
        const float i_ = rk_sigmoid_f32(a[j] + u[j]);
        const float f_ = rk_sigmoid_f32(a[H + j] + u[H + j]);
        const float g_ = rk_tanh_f32(a[2 * H + j] + u[2 * H + j]);
        const float o_ = rk_sigmoid_f32(a[3 * H + j] + u[3 * H + j]);
        const float cn = f_ * c[j] + i_ * g_;
        c[j] = cn;
        hn[j] = y[j] = o_ * rk_tanh_f32(cn);
    }
}

static inline void rq_gru_row(int64_t n, int64_t H, const float *restrict a, const float *restrict u,
                              const float *restrict h, float *restrict hn, float *restrict y)
{
    for (int64_t j = 0; j < n; j++) {
        const float r_ = rk_sigmoid_f32(a[j] + u[j]);
        const float z_ = rk_sigmoid_f32(a[H + j] + u[H + j]);
        const float n_ = rk_tanh_f32(a[2 * H + j] + r_ * u[2 * H + j]);
        hn[j] = y[j] = n_ + z_ * (h[j] - n_);
    }
}

static inline void rq_rnn_row(int64_t n, int relu, const float *restrict a, const float *restrict u,
                              float *restrict hn, float *restrict y)
{
    if (relu)
        for (int64_t j = 0; j < n; j++) {
            const float v = a[j] + u[j];
            hn[j] = y[j] = v > 0.0f ? v : 0.0f;
        }
    else
        for (int64_t j = 0; j < n; j++) hn[j] = y[j] = rk_tanh_f32(a[j] + u[j]);
}

/* One layer over T steps, this thread's channels [j0, j1) (whole panels; all of
 * them on one thread): x (T, B, I), h and c (B, H) the state in and out (c
 * NULL but for the LSTM), y (T, B, H); hb 2 (B, H) buffers for the new states,
 * used in turn.  Per step, with a = x_t W_ih^T + b_ih and u = h W_hh^T + b_hh
 * (both through the int8 weights):
 *   RNN   h = phi(a + u)
 *   LSTM  [i f g o] = a + u,  c = sig(f) c + sig(i) tanh(g),  h = sig(o) tanh(c)
 *   GRU   r = sig(a_r + u_r), z = sig(a_z + u_z), n = tanh(a_n + r u_n),
 *         h = n + z (h - n)
 * Past a sequence's end (lens) the state is kept and the output is 0.  Each
 * thread quantizes x_t and the whole h into its own qx, qh, then writes its
 * channels of a, u, the new state and y; a barrier ends the step. */
static void rq_layer(int64_t cell, int relu, int64_t T, int64_t B, int64_t H, int64_t I,
                     const int64_t *lens, const float *x, const rk_qlayer *w, float *h, float *c,
                     float *y, int16_t *qx, int16_t *qh, float *sx, float *sh, float *a, float *u,
                     float *hb, int64_t j0, int64_t j1, int nt)
{
    const int64_t G = cell == 1 ? 4 : cell == 2 ? 3 : 1, N = G * H, BH = B * H, n = j1 - j0;
    const int64_t Ip = rq_padded(I), Hp = rq_padded(H);
    const int32_t qmax_i = rq_qmax(I), qmax_h = rq_qmax(H);
    const float *hp = h;                                  /* the state before step t */
    for (int64_t t = 0; t < T; t++) {
        const float *xt = x + t * B * I;
        float *hn = hb + (t % 2) * BH;                    /* the state after it */
        for (int64_t b = 0; b < B; b++) {
            sx[b] = rq_quantize_row(I, Ip, qmax_i, xt + b * I, qx + b * Ip);
            sh[b] = rq_quantize_row(H, Hp, qmax_h, hp + b * H, qh + b * Hp);
        }
        for (int64_t g = 0; g < G; g++) {
            rq_product(B, g * H + j0, g * H + j1, N, Ip, qx, sx, w->q_ih, w->s_ih, w->b_ih, a);
            rq_product(B, g * H + j0, g * H + j1, N, Hp, qh, sh, w->q_hh, w->s_hh, w->b_hh, u);
        }
        for (int64_t b = 0; b < B; b++) {
            float *yb = y + (t * B + b) * H + j0, *hnb = hn + b * H + j0;
            const float *hpb = hp + b * H + j0, *ab = a + b * N + j0, *ub = u + b * N + j0;
            if (lens && t >= lens[b]) {
                memset(yb, 0, (size_t)n * sizeof *yb);
                memcpy(hnb, hpb, (size_t)n * sizeof *hnb);
                continue;
            }
            if (cell == 1) rq_lstm_row(n, H, ab, ub, c + b * H + j0, hnb, yb);
            else if (cell == 2) rq_gru_row(n, H, ab, ub, hpb, hnb, yb);
            else rq_rnn_row(n, relu, ab, ub, hnb, yb);
        }
        hp = hn;
        if (nt > 1) {
#pragma omp barrier
        }
    }
    for (int64_t b = 0; b < B; b++)                       /* every read of h is done */
        memcpy(h + b * H + j0, hp + b * H + j0, (size_t)n * sizeof *h);
}

/* Threads for the stack: as many as OpenMP allows (rnnkit sets that per call from
 * the free cores), fewer when each step's products (`flops`) are too small to
 * pay for a barrier while their weights (`bytes`) fit one core's cache, and at
 * most one per panel of channels (H a multiple of RQ_NP, else one). */
static int rq_threads(int64_t H, int64_t flops, int64_t bytes)
{
    int64_t n = 1;
#ifdef _OPENMP
    n = rk_serial ? 1 : omp_get_max_threads();
#endif
    if (H % RQ_NP) return 1;
    if (rk_flops_per_thread > 0 && bytes < (1 << 19) && n > flops / rk_flops_per_thread)
        n = flops / rk_flops_per_thread;
    if (n > H / RQ_NP) n = H / RQ_NP;
    return n < 1 ? 1 : (int)n;
}

/* A stack of L unidirectional layers: x (T, B, I0), w[l] layer l's weights,
 * h (and c) (L, B, H) the states in and out, y (T, B, H) the last layer's
 * outputs.  Returns -1 when the workspace could not be allocated. */
static int qstack_inf(int64_t cell, int relu, int64_t L, int64_t T, int64_t B, int64_t H,
                      int64_t I0, const int64_t *lens, const float *x, const rk_qlayer *w, float *h,
                      float *c, float *y)
{
    const int64_t G = cell == 1 ? 4 : cell == 2 ? 3 : 1, N = G * H;
    const int64_t Kp = rq_padded(I0 > H ? I0 : H);
    int64_t flops = 0, bytes = 0;
    for (int64_t l = 0; l < L; l++) {
        bytes += N * ((l ? H : I0) + H);
        flops += 2 * B * N * ((l ? H : I0) + H);
    }
    const int nt = rq_threads(H, flops, bytes);
    int16_t *q = malloc((size_t)(nt * 2 * B * Kp) * sizeof *q);
    float *f = malloc((size_t)(nt * 2 * B + 2 * B * N + 2 * B * H + (L > 1 ? T * B * H : 0)) * sizeof *f);
    if (!q || !f) {
        free(q);
        free(f);
        return -1;
    }
    float *a = f + nt * 2 * B, *u = a + B * N, *hb = u + B * N, *buf = hb + 2 * B * H;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t i = 0, blocks = H / RQ_NP, j0 = 0, j1 = H;
#ifdef _OPENMP
        i = omp_get_thread_num();
#endif
        if (nt > 1) {
            j0 = blocks * i / nt * RQ_NP;
            j1 = blocks * (i + 1) / nt * RQ_NP;
        }
        int16_t *qx = q + i * 2 * B * Kp, *qh = qx + B * Kp;
        float *sx = f + i * 2 * B, *sh = sx + B;
        const float *in = x;
        for (int64_t l = 0; l < L; l++) {
            float *out = (L - 1 - l) % 2 == 0 ? y : buf;     /* alternate; the last layer writes y */
            rq_layer(cell, relu, T, B, H, l ? H : I0, lens, in, &w[l], h + l * B * H,
                     c ? c + l * B * H : NULL, out, qx, qh, sx, sh, a, u, hb, j0, j1, nt);
            in = out;
        }
    }
    free(q);
    free(f);
    return 0;
}

#define RQ_CAT2(a, b) a##b
#define RQ_CAT(a, b) RQ_CAT2(a, b)
#define RQ_STR2(a) #a
#define RQ_STR(a) RQ_STR2(a)
const rk_qtable RQ_CAT(rk_qtable_, RK_ISA) = {RQ_STR(RK_ISA), qmatvec, qstack_inf};

#else /* !RK_ISA: the module functions */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

#include "_fastrnn.h"

#define RQ_MAXLAYERS 64

static const rk_qtable *const rq_tables[] = {
#ifdef RK_HAVE_AVX512
    &rk_qtable_avx512,
#endif
#ifdef RK_HAVE_AVX2
    &rk_qtable_avx2,
#endif
    &rk_qtable_baseline,
};

static const rk_qtable *rq_table = &rk_qtable_baseline;

void rk_quant_select(const char *isa)
{
    for (size_t k = 0; k < sizeof rq_tables / sizeof rq_tables[0]; k++)
        if (strcmp(rq_tables[k]->isa, isa) == 0) rq_table = rq_tables[k];
}

typedef struct {
    Py_buffer views[6 * RQ_MAXLAYERS + 8];
    int n;
} rq_views;

static void rq_release(rq_views *v)
{
    for (int k = 0; k < v->n; k++) PyBuffer_Release(&v->views[k]);
    v->n = 0;
}

/* The data of obj as a C-contiguous array of `kind` ('f' float32, 'b' int8,
 * 'q' int64), writable when `write`; None gives NULL when `none_ok`. */
static int rq_array(rq_views *v, PyObject *obj, char kind, int write, int none_ok, const char *fn,
                    const char *what, void **out)
{
    if (obj == Py_None && none_ok) {
        *out = NULL;
        return 0;
    }
    Py_buffer *b = &v->views[v->n];
    const int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (write ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, b, flags) < 0) {
        PyErr_Format(PyExc_TypeError, "_fastrnn.%s: %s must be a C-contiguous%s array", fn, what,
                     write ? " writable" : "");
        return -1;
    }
    v->n++;
    const char *f = b->format ? b->format : "B";
    if (*f == '<' || *f == '=' || *f == '@') f++;
    const int ok = f[1] == 0 &&
                   ((kind == 'f' && f[0] == 'f' && b->itemsize == 4) ||
                    (kind == 'b' && f[0] == 'b' && b->itemsize == 1) ||
                    (kind == 'q' && (f[0] == 'q' || f[0] == 'l') && b->itemsize == 8));
    if (!ok) {
        PyErr_Format(PyExc_TypeError, "_fastrnn.%s: %s must be %s", fn, what,
                     kind == 'f' ? "float32" : kind == 'b' ? "int8" : "int64");
        return -1;
    }
    *out = b->buf;
    return 0;
}

static int rq_ints(PyObject *const *args, int n, int64_t *out)
{
    for (int k = 0; k < n; k++) {
        out[k] = PyLong_AsLongLong(args[k]);
        if (out[k] == -1 && PyErr_Occurred()) return -1;
    }
    return 0;
}

/* qmatvec(M, N, K, x, Q, s, bias, y): y (M, N) = x (M, K) W^T + bias through
 * Q (N, Kp) int8 and s (N,) float32; bias (N,) or None.  Shapes are the
 * caller's (rnnkit.layers.quantized) to get right. */
static PyObject *py_qmatvec(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    int64_t i[3];
    void *p[5];
    rq_views v = {.n = 0};
    if (nargs != 8) return PyErr_Format(PyExc_TypeError, "_fastrnn.qmatvec takes 8 arguments");
    if (rq_ints(args, 3, i) < 0 || rq_array(&v, args[3], 'f', 0, 0, "qmatvec", "x", &p[0]) < 0 ||
        rq_array(&v, args[4], 'b', 0, 0, "qmatvec", "Q", &p[1]) < 0 ||
        rq_array(&v, args[5], 'f', 0, 0, "qmatvec", "s", &p[2]) < 0 ||
        rq_array(&v, args[6], 'f', 0, 1, "qmatvec", "bias", &p[3]) < 0 ||
        rq_array(&v, args[7], 'f', 1, 0, "qmatvec", "y", &p[4]) < 0) {
        rq_release(&v);
        return NULL;
    }
    const rk_qtable *t = rq_table;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = t->qmatvec(i[0], i[1], i[2], p[0], p[1], p[2], p[3], p[4]);
    Py_END_ALLOW_THREADS
    rq_release(&v);
    if (rc) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* qstack_inf(cell, relu, L, T, B, H, I0, lens, x, weights, h, c, y): see
 * rk_qtable; weights is a sequence of 6 arrays per layer (Q_ih int8, s_ih,
 * b_ih, Q_hh int8, s_hh, b_hh; the biases None for none). */
static PyObject *py_qstack_inf(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    int64_t i[7];
    void *p[4], *lens;
    rk_qlayer layers[RQ_MAXLAYERS];
    rq_views v = {.n = 0};
    if (nargs != 13) return PyErr_Format(PyExc_TypeError, "_fastrnn.qstack_inf takes 13 arguments");
    if (rq_ints(args, 7, i) < 0) return NULL;
    if (i[2] < 1 || i[2] > RQ_MAXLAYERS)
        return PyErr_Format(PyExc_ValueError, "_fastrnn.qstack_inf: 1 to %d layers, got %lld",
                            RQ_MAXLAYERS, (long long)i[2]);
    PyObject *seq = PySequence_Fast(args[9], "_fastrnn.qstack_inf: weights must be a sequence");
    if (!seq) return NULL;
    int bad = PySequence_Fast_GET_SIZE(seq) != 6 * i[2];
    if (bad) PyErr_Format(PyExc_ValueError, "_fastrnn.qstack_inf: 6 weights per layer expected");
    for (int64_t l = 0; l < i[2] && !bad; l++) {
        PyObject **item = PySequence_Fast_ITEMS(seq) + 6 * l;
        void *q[6];
        for (int k = 0; k < 6 && !bad; k++)
            bad = rq_array(&v, item[k], k % 3 == 0 ? 'b' : 'f', 0, k % 3 == 2, "qstack_inf",
                           "a weight", &q[k]) < 0;
        if (!bad)
            layers[l] = (rk_qlayer){q[0], q[1], q[2], q[3], q[4], q[5]};
    }
    Py_DECREF(seq);
    if (bad || rq_array(&v, args[7], 'q', 0, 1, "qstack_inf", "lens", &lens) < 0 ||
        rq_array(&v, args[8], 'f', 0, 0, "qstack_inf", "x", &p[0]) < 0 ||
        rq_array(&v, args[10], 'f', 1, 0, "qstack_inf", "h", &p[1]) < 0 ||
        rq_array(&v, args[11], 'f', 1, 1, "qstack_inf", "c", &p[2]) < 0 ||
        rq_array(&v, args[12], 'f', 1, 0, "qstack_inf", "y", &p[3]) < 0) {
        rq_release(&v);
        return NULL;
    }
    const rk_qtable *t = rq_table;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = t->qstack_inf(i[0], (int)i[1], i[2], i[3], i[4], i[5], i[6], lens, p[0], layers, p[1],
                       p[2], p[3]);
    Py_END_ALLOW_THREADS
    rq_release(&v);
    if (rc) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyMethodDef rq_methods[] = {
    {"qmatvec", (PyCFunction)(void (*)(void))py_qmatvec, METH_FASTCALL,
     "qmatvec(M, N, K, x, Q, s, bias, y): y = x W^T + bias through int8 weights."},
    {"qstack_inf", (PyCFunction)(void (*)(void))py_qstack_inf, METH_FASTCALL,
     "qstack_inf(cell, relu, L, T, B, H, I0, lens, x, weights, h, c, y): int8 inference."},
    {NULL, NULL, 0, NULL},
};

int rk_quant_init(PyObject *module, const char *isa)
{
    rk_quant_select(isa);
    if (PyModule_AddFunctions(module, rq_methods) < 0) return -1;
    return PyModule_AddIntConstant(module, "QALIGN", RK_QALIGN);
}

#endif /* RK_ISA */
