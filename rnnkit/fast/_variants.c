/*
 * Fused time loops for the variants people train with (forward, BPTT and
 * cache-free inference): the LSTM with a projection (proj_size) and/or layer
 * norm, the layer-normalised GRU, and IndRNN.
 *
 * The math is exactly that of rnnkit/cells/{lstm_variants,gru_variants,indrnn}.py
 * (the readable reference, whose module docstrings derive every line used
 * here); the split of the work is _kernels.c's.  Python (rnnkit/fast/) does
 * what happens once per sequence — the input projection of all steps (with its
 * layer norm LN_ih), dx and the weight, gain and bias gradients after the
 * backward loop — and the time loop runs here:
 *
 *   LSTM, per step t:  z_t (+)= h_{t-1} @ W_hh^T     (columns split among threads)
 *                      per row: LN_hh, the gates, c~, LN_c, k = tanh(.), m = o k
 *                      h_t = m @ W_hr^T             (each thread its rows)
 *   backward:          per row: dm = dh @ W_hr (its rows), dz, dc, LN_c', LN_hh'
 *                      dh_{t-1} += dv_t @ W_hh      (columns)
 *   GRU:               u_t = h_{t-1} @ W_hh^T, per row LN_hh and the gates;
 *                      backward per row, then dh_{t-1} += dv_t @ W_hh
 *   IndRNN:            per row only (u is a vector): each thread runs the whole
 *                      time loop on its rows, with no barrier at all
 *
 * The projection's product is split by rows, not columns: W_hr (P, H) is small
 * beside W_hh, and each thread then goes on with its own rows without a third
 * barrier per step.  Layer norm's sums over a row run in vector lanes (the
 * reference's NumPy sums pairwise: both are within a few ulps of the exact sum).
 *
 * LSTM arguments: P the projection size (P = H and w_hr NULL without one); ln
 * NULL without layer norm, else [gamma_hh (4H), gamma_c (H), beta_c (H)], with
 * beta_hh folded into bias (4H) = b_ih + b_hh (+ beta_hh).  gates (T, B, 4H) is
 * the input side (W_ih x_t, or LN_ih of it: then x is NULL), the gates [i f g o]
 * on exit.  The caches are the reference's (LSTMVariantCache): h (T+1, B, P)
 * and c (T+1, B, H) with h[0], c[0] set; c_new = c~, k = tanh(LN_c(c~)) (T, B,
 * H); with ln n_hh (T, B, 4H) and n_c (T, B, H) the normalised values, s_hh and
 * s_c (T, B) their 1/std.  work: B H (the rows' m) for the forward and backward
 * loops; 4BH + BH + BP + BH (v, m, h~, LN_c's n) for inference.
 */
#ifndef RK_TEMPLATE

#include "_common.h"

#define RK_LN_EPS 1e-5                /* rnnkit.cells._layernorm.EPS */

#define RK_TEMPLATE 32
#include "_variants.c"      /* this file, as the template part, for float */
#undef RK_TEMPLATE
#define RK_TEMPLATE 64
#include "_variants.c"      /* and for double */
#undef RK_TEMPLATE

/* This build's table of the variants' loops (_fastrnn.h), named after its instruction set. */
#define RK_ENTRY_F32(name, params) name##_f32,
#define RK_ENTRY_F64(name, params) name##_f64,
const rk_variant_table RK_CAT(rk_variants_, RK_ISA) = {{RK_VARIANTS(RK_ENTRY_F32, float)},
                                                      {RK_VARIANTS(RK_ENTRY_F64, double)}};

#else /* RK_TEMPLATE: the kernels, for one real type R */

#include "_common.h"    /* the products and row helpers for R */

/* ------------------------------------------------------------------ layer norm -- */

/* sum_j a[j] b[j] (b NULL: sum_j a[j]), in vector lanes, then across them. */
static inline R SFX(dot)(int64_t n, const R *a, const R *b)
{
    VEC s = {0};
    int64_t j = 0;
    for (; j + VW <= n; j += VW)
        s += *(const VEC *)(a + j) * (b ? *(const VEC *)(b + j) : (VEC){0} + 1);
    R r = SFX(hsum)(s);
    for (; j < n; j++) r += a[j] * (b ? b[j] : 1);
    return r;
}

/* sum_j a[j] b[j] c[j], as dot. */
static inline R SFX(dot3)(int64_t n, const R *a, const R *b, const R *c)
{
    VEC s = {0};
    int64_t j = 0;
    for (; j + VW <= n; j += VW)
        s += *(const VEC *)(a + j) * *(const VEC *)(b + j) * *(const VEC *)(c + j);
    R r = SFX(hsum)(s);
    for (; j < n; j++) r += a[j] * b[j] * c[j];
    return r;
}

/* n = (a - mean(a)) s with s = 1 / sqrt(var(a) + eps), written into nrm (which
 * may be a); returns s.  The reference's two passes (_layernorm.forward). */
static inline R SFX(ln_row)(int64_t n, const R *a, R *nrm)
{
    const R mu = SFX(dot)(n, a, NULL) / (R)n;
    for (int64_t j = 0; j < n; j++) nrm[j] = a[j] - mu;
    const R s = (R)(1.0 / sqrt((double)(SFX(dot)(n, nrm, nrm) / (R)n + (R)RK_LN_EPS)));
    for (int64_t j = 0; j < n; j++) nrm[j] *= s;
    return s;
}

/* dL/da = s (g - mean(g) - n mean(g n)), g = dy gamma (_layernorm.backward). */
static inline void SFX(ln_row_bwd)(int64_t n, const R *restrict dy, const R *restrict nrm, R s,
                                   const R *restrict gamma, R *restrict da)
{
    const R mg = SFX(dot)(n, dy, gamma) / (R)n, mgn = SFX(dot3)(n, dy, gamma, nrm) / (R)n;
    for (int64_t j = 0; j < n; j++) da[j] = s * (dy[j] * gamma[j] - mg - nrm[j] * mgn);
}

/* ----------------------------------------------------------------------- LSTM -- */

/* Equations (2)-(6) of cells/lstm_variants.py for one row.  z (4H): the input
 * side (without bias) in, the gates out; v (4H): with ln, W_hh r_t, normalised
 * in place (its 1/std into *s_v), else unused (z holds the product already);
 * cp the previous cell state and cn c~ (may be the same array: inference); nc
 * (H) LN_c's normalised c~ (ln only), its 1/std into *s_c; k (or NULL) k_t; m
 * out o k. */
static inline void SFX(lstmv_row_fwd)(int64_t H, const R *ln, R *restrict z, R *restrict v,
                                      R *s_v, const R *restrict bias, const R *cp, R *cn,
                                      R *restrict nc, R *s_c, R *restrict k, R *restrict m)
{
    if (ln) {                                                          /* (2) */
        *s_v = SFX(ln_row)(4 * H, v, v);
        for (int64_t j = 0; j < 4 * H; j++) z[j] += bias[j] + ln[j] * v[j];
    } else {
        for (int64_t j = 0; j < 4 * H; j++) z[j] += bias[j];
    }
    for (int64_t j = 0; j < H; j++) {                                  /* (3)-(4) */
        const R i = SIGMOID(z[j]), f = SIGMOID(z[H + j]), g = TANH(z[2 * H + j]);
        const R o = SIGMOID(z[3 * H + j]);                             /* (5) */
        z[j] = i; z[H + j] = f; z[2 * H + j] = g; z[3 * H + j] = o;
        cn[j] = f * cp[j] + i * g;
    }
    const R *o = z + 3 * H;
    if (ln) {                                                          /* (6) */
        const R *gc = ln + 4 * H, *bc = ln + 5 * H;
        *s_c = SFX(ln_row)(H, cn, nc);
        for (int64_t j = 0; j < H; j++) {
            const R kj = TANH(gc[j] * nc[j] + bc[j]);
            if (k) k[j] = kj;
            m[j] = o[j] * kj;
        }
    } else {
        for (int64_t j = 0; j < H; j++) {
            const R kj = TANH(cn[j]);
            if (k) k[j] = kj;
            m[j] = o[j] * kj;
        }
    }
}

/* The backward equations (6)-(2) of cells/lstm_variants.py for one row inside
 * its sequence: d = dm (H) in; dc: dc_t in, dc_{t-1} out; dz (4H) out; with ln
 * also dchat (H) = dL/dLN_c(c~) and dv (4H) = LN_hh'(dz) out. */
static inline void SFX(lstmv_row_bwd)(int64_t H, const R *ln, const R *restrict gz,
                                      const R *restrict cp, const R *restrict k,
                                      const R *restrict n_c, R s_c, const R *restrict n_hh,
                                      R s_hh, const R *restrict d, R *restrict dc,
                                      R *restrict dz, R *restrict dv, R *restrict dchat)
{
    const R *i_ = gz, *f_ = gz + H, *g_ = gz + 2 * H, *o_ = gz + 3 * H;
    if (ln) {                 /* through k = tanh(LN_c(c~)): dchat, then LN_c' into dc */
        for (int64_t j = 0; j < H; j++) dchat[j] = d[j] * o_[j] * (1 - k[j] * k[j]);
        SFX(ln_row_bwd)(H, dchat, n_c, s_c, ln + 4 * H, dz + 2 * H);   /* dz_g as scratch */
    }
    for (int64_t j = 0; j < H; j++) {
        const R i = i_[j], f = f_[j], g = g_[j], o = o_[j], kj = k[j];
        const R dcn = dc[j] + (ln ? dz[2 * H + j] : d[j] * o * (1 - kj * kj));
        dz[3 * H + j] = d[j] * kj * (o * (1 - o));                     /* (5) */
        dz[j] = dcn * g * (i * (1 - i));                               /* (3, 4) */
        dz[H + j] = dcn * cp[j] * (f * (1 - f));
        dz[2 * H + j] = dcn * i * (1 - g * g);
        dc[j] = dcn * f;
    }
    if (ln) SFX(ln_row_bwd)(4 * H, dz, n_hh, s_hh, ln, dv);           /* (2) */
}

/* The rows [b0, b1) of C (M, N) = A (M, K) @ W^T (W (N, K); trans) or A @ W
 * (W (K, N)), from W's panels P (or W itself when P is NULL and trans). */
static void SFX(rows_product)(int64_t b0, int64_t b1, int64_t N, int64_t K, const R *A,
                              const R *W, const R *P, int trans, R *C)
{
    if (trans)
        SFX(product_t)(b1 - b0, N, K, A + b0 * K, W, P, C + b0 * N, 0, 0, PANELS(N));
    else
        for (int64_t p = 0; p < PANELS(N); p++)
            SFX(gemm_panel)(b1 - b0, N, K, A + b0 * K, K, P, p, C + b0 * N, N, 0);
}

/* Forward loop (the arguments: this file's header). */
static int SFX(lstmv_fwd)(int64_t T, int64_t B, int64_t H, int64_t P, const int64_t *lens,
                          int64_t I, const R *x, const R *w_ih, R *gates, const R *bias,
                          const R *w_hh, const R *w_hr, const R *ln, R *h, R *c, R *c_new, R *k,
                          R *n_hh, R *s_hh, R *n_c, R *s_c, R *y, R *work)
{
    const int64_t N = 4 * H, BH = B * H, BP = B * P, pack = T * B >= PACK_MIN_ROWS;
    R *Pw = SFX(packed_alloc)(P, N, pack);
    R *P_ih = SFX(input_panels)(T, B, I, N, x);
    R *P_hr = w_hr ? SFX(packed_alloc)(H, P, pack) : NULL;
    const int64_t K = P + (x ? I : 0);
    const int nt = rk_threads(2 * B * N * K, N * K * (int64_t)sizeof(R), PANELS(N));
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t b0, b1, p0, p1;
        rk_rows(B, &b0, &b1);
        rk_rows(PANELS(N), &p0, &p1);
        if (Pw) SFX(pack_all)(P, N, w_hh, 1, Pw);
        if (P_ih) SFX(pack_all)(I, N, w_ih, 1, P_ih);
        if (P_hr) SFX(pack_all)(H, P, w_hr, 1, P_hr);
        for (int64_t t = 0; t < T; t++) {
            R *z = gates + t * B * N, *v = ln ? n_hh + t * B * N : NULL;
            R *hp = h + t * BP, *hn = h + (t + 1) * BP;
            SFX(project_step)(t, B, I, N, x, w_ih, P_ih, z, p0, p1);
            SFX(product_t)(B, N, P, hp, w_hh, Pw, ln ? v : z, !ln, p0, p1);        /* (1-2) */
            RK_BARRIER(nt);
            for (int64_t b = b0; b < b1; b++) {
                const int64_t o = t * BH + b * H, tb = t * B + b;
                SFX(lstmv_row_fwd)(H, ln, z + b * N, ln ? v + b * N : NULL, ln ? s_hh + tb : NULL,
                                   bias, c + o, c_new + o, ln ? n_c + o : NULL,
                                   ln ? s_c + tb : NULL, k + o, w_hr ? work + b * H : hn + b * H);
                const int inside = !lens || t < lens[b];                   /* (8) */
                memcpy(c + BH + o, inside ? c_new + o : c + o, (size_t)H * sizeof(R));
            }
            if (w_hr)                                                          /* (7) */
                SFX(rows_product)(b0, b1, P, H, work, w_hr, P_hr, 1, hn);
            for (int64_t b = b0; b < b1; b++)
                SFX(finish_row)(P, !lens || t < lens[b], hn + b * P, hp + b * P, NULL, NULL,
                                y + t * BP + b * P);
            RK_BARRIER(nt);
        }
    }
    free(Pw);
    free(P_ih);
    free(P_hr);
    return 0;
}

/* Backward loop: the forward's caches; d_out (T, B, P) or NULL; dh (B, P) and
 * dc (B, H): d_final_state in, (dh_0, dc_0) out; dz (T, B, 4H) out; with ln dv
 * (T, B, 4H) and dchat (T, B, H) out; with w_hr dhn (T, B, P) out (dh~, for
 * W_hr's gradient); dh_all (T, B, P) or NULL. */
static int SFX(lstmv_bwd)(int64_t T, int64_t B, int64_t H, int64_t P, const int64_t *lens,
                          const R *gates, const R *c, const R *k, const R *ln, const R *n_hh,
                          const R *s_hh, const R *n_c, const R *s_c, const R *w_hh,
                          const R *w_hr, const R *d_out, R *dh, R *dc, R *dz, R *dv, R *dchat,
                          R *dhn, R *dh_all, R *work)
{
    const int64_t G = 4 * H, BH = B * H, BP = B * P;
    R *Pw = SFX(packed_alloc)(G, P, 1);
    R *P_hr = w_hr ? SFX(packed_alloc)(P, H, 1) : NULL;
    if (!Pw || (w_hr && !P_hr)) {
        free(Pw);
        free(P_hr);
        return -1;                           /* out of memory */
    }
    const int nt = rk_threads(2 * B * G * P, G * P * (int64_t)sizeof(R), PANELS(P));
    R *dvs = ln ? dv : dz;                   /* what W_hh's product reads */
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t b0, b1, p0, p1;
        rk_rows(B, &b0, &b1);
        rk_rows(PANELS(P), &p0, &p1);
        SFX(pack_all)(G, P, w_hh, 0, Pw);
        if (P_hr) SFX(pack_all)(P, H, w_hr, 0, P_hr);
        for (int64_t t = T - 1; t >= 0; t--) {
            for (int64_t b = b0; b < b1; b++) {
                const int inside = !lens || t < lens[b];
                const int64_t op = t * BP + b * P;
                SFX(dh_row)(P, inside, dh + b * P, d_out ? d_out + op : NULL,
                            dh_all ? dh_all + op : NULL);
                if (w_hr) {                  /* dh~ = the part of dh the cell produced */
                    if (inside) memcpy(dhn + op, dh + b * P, (size_t)P * sizeof(R));
                    else memset(dhn + op, 0, (size_t)P * sizeof(R));
                }
            }
            if (w_hr)                        /* (7): dm = dh~ W_hr, this thread's rows */
                SFX(rows_product)(b0, b1, H, P, dhn + t * BP, w_hr, P_hr, 0, work);
            for (int64_t b = b0; b < b1; b++) {
                const int64_t o = t * BH + b * H, og = (t * B + b) * G, tb = t * B + b;
                if (!lens || t < lens[b]) {
                    SFX(lstmv_row_bwd)(H, ln, gates + og, c + o, k + o, ln ? n_c + o : NULL,
                                       ln ? s_c[tb] : 0, ln ? n_hh + og : NULL,
                                       ln ? s_hh[tb] : 0, w_hr ? work + b * H : dh + b * P,
                                       dc + b * H, dz + og, ln ? dv + og : NULL,
                                       ln ? dchat + o : NULL);
                    memset(dh + b * P, 0, (size_t)P * sizeof(R));   /* all of dh went into dz */
                } else {                     /* copied through: dh, dc are carried */
                    memset(dz + og, 0, (size_t)G * sizeof(R));
                    if (ln) {
                        memset(dv + og, 0, (size_t)G * sizeof(R));
                        memset(dchat + o, 0, (size_t)H * sizeof(R));
                    }
                }
            }
            RK_BARRIER(nt);
            SFX(product_n)(B, P, G, dvs + t * B * G, Pw, dh, p0, p1);     /* + W_hh^T dv_t */
            RK_BARRIER(nt);
        }
    }
    free(Pw);
    free(P_hr);
    return 0;
}

/* Inference: h (B, P) and c (B, H) the state in and out; y (T, B, P); gates
 * the input side of every step (x NULL) or scratch (B, 4H) for one step's. */
static int SFX(lstmv_inf)(int64_t T, int64_t B, int64_t H, int64_t P, const int64_t *lens,
                          int64_t I, const R *x, const R *w_ih, R *gates, const R *bias,
                          const R *w_hh, const R *w_hr, const R *ln, R *h, R *c, R *y, R *work)
{
    const int64_t N = 4 * H, BH = B * H, BP = B * P, pack = T * B >= PACK_MIN_ROWS;
    R *v = work, *m = v + B * N, *ht = m + BH, *nc = ht + BP;
    R *Pw = SFX(packed_alloc)(P, N, pack);
    R *P_ih = SFX(input_panels)(T, B, I, N, x);
    R *P_hr = w_hr ? SFX(packed_alloc)(H, P, pack) : NULL;
    const int64_t K = P + (x ? I : 0);
    const int nt = rk_threads(2 * B * N * K, N * K * (int64_t)sizeof(R), PANELS(N));
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t b0, b1, p0, p1;
        rk_rows(B, &b0, &b1);
        rk_rows(PANELS(N), &p0, &p1);
        if (Pw) SFX(pack_all)(P, N, w_hh, 1, Pw);
        if (P_ih) SFX(pack_all)(I, N, w_ih, 1, P_ih);
        if (P_hr) SFX(pack_all)(H, P, w_hr, 1, P_hr);
        for (int64_t t = 0; t < T; t++) {
            R *z = x ? gates : gates + t * B * N;
            SFX(project_step)(t, B, I, N, x, w_ih, P_ih, z, p0, p1);
            SFX(product_t)(B, N, P, h, w_hh, Pw, ln ? v : z, !ln, p0, p1);
            RK_BARRIER(nt);
            for (int64_t b = b0; b < b1; b++) {
                R s_v, s_c;
                if (!lens || t < lens[b])
                    SFX(lstmv_row_fwd)(H, ln, z + b * N, v + b * N, &s_v, bias, c + b * H,
                                       c + b * H, nc + b * H, &s_c, NULL,
                                       w_hr ? m + b * H : ht + b * P);
                else if (w_hr)               /* a row the projection reads, unused */
                    memset(m + b * H, 0, (size_t)H * sizeof(R));
            }
            if (w_hr) SFX(rows_product)(b0, b1, P, H, m, w_hr, P_hr, 1, ht);
            for (int64_t b = b0; b < b1; b++) {
                R *yb = y + t * BP + b * P;
                if (lens && t >= lens[b]) {
                    memset(yb, 0, (size_t)P * sizeof(R));
                } else {
                    memcpy(h + b * P, ht + b * P, (size_t)P * sizeof(R));
                    memcpy(yb, ht + b * P, (size_t)P * sizeof(R));
                }
            }
            RK_BARRIER(nt);
        }
    }
    free(Pw);
    free(P_ih);
    free(P_hr);
    return 0;
}

/* ------------------------------------------------------------------------ GRU -- */

/* Equations (2)-(4) of cells/gru_variants.py for one row: a (3H) the input
 * side LN_ih(W_ih x_t) + b_ih in, the gates [r z n] out; v (3H) W_hh h_{t-1},
 * normalised in place (1/std into *s_v); ln = [gamma_hh (3H), beta_hh + b_hh
 * (3H)]; hp and h the previous and the new state (may be the same array); un
 * (or NULL) out: u_n. */
static inline void SFX(gruln_row_fwd)(int64_t H, const R *restrict ln, R *restrict a,
                                      R *restrict v, R *s_v, const R *hp, R *h, R *un)
{
    *s_v = SFX(ln_row)(3 * H, v, v);
    const R *gam = ln, *bet = ln + 3 * H;
    for (int64_t j = 0; j < H; j++) {
        const R ur = gam[j] * v[j] + bet[j], uz = gam[H + j] * v[H + j] + bet[H + j];
        const R u_n = gam[2 * H + j] * v[2 * H + j] + bet[2 * H + j];
        const R r = SIGMOID(a[j] + ur), z = SIGMOID(a[H + j] + uz);           /* (3) */
        const R n = TANH(a[2 * H + j] + r * u_n);
        a[j] = r; a[H + j] = z; a[2 * H + j] = n;
        if (un) un[j] = u_n;
        h[j] = n + z * (hp[j] - n);                                           /* (4) */
    }
}

/* Forward loop.  a (T, B, 3H): the input side in, the gates out; h (T+1, B, H)
 * with h[0] set; hn (T, B, H) u_n; n_hh (T, B, 3H), s_hh (T, B) LN_hh's cache. */
static int SFX(gruln_fwd)(int64_t T, int64_t B, int64_t H, const int64_t *lens, R *a,
                          const R *ln, const R *w_hh, R *h, R *hn, R *n_hh, R *s_hh, R *y)
{
    const int64_t BH = B * H, N = 3 * H;
    R *Pw = SFX(packed_alloc)(H, N, T * B >= PACK_MIN_ROWS);
    const int nt = rk_threads(2 * B * N * H, N * H * (int64_t)sizeof(R), PANELS(N));
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t b0, b1, p0, p1;
        rk_rows(B, &b0, &b1);
        rk_rows(PANELS(N), &p0, &p1);
        if (Pw) SFX(pack_all)(H, N, w_hh, 1, Pw);
        for (int64_t t = 0; t < T; t++) {
            SFX(product_t)(B, N, H, h + t * BH, w_hh, Pw, n_hh + t * B * N, 0, p0, p1);  /* (2) */
            RK_BARRIER(nt);
            for (int64_t b = b0; b < b1; b++) {
                const int64_t o = t * BH + b * H, og = (t * B + b) * N;
                SFX(gruln_row_fwd)(H, ln, a + og, n_hh + og, s_hh + t * B + b, h + o, h + BH + o,
                                   hn + o);
                SFX(finish_row)(H, !lens || t < lens[b], h + BH + o, h + o, NULL, NULL, y + o);
            }
            RK_BARRIER(nt);
        }
    }
    free(Pw);
    return 0;
}

/* Backward loop: the forward's caches; ln: only gamma_hh (3H) is read; dh (B, H)
 * d_final_state in, dh_0 out; da, du (T, B, 3H) the input- and hidden-side
 * gradients, dv = LN_hh'(du) out. */
static int SFX(gruln_bwd)(int64_t T, int64_t B, int64_t H, const int64_t *lens, const R *gates,
                          const R *hn, const R *h, const R *n_hh, const R *s_hh, const R *ln,
                          const R *w_hh, const R *d_out, R *dh, R *da, R *du, R *dv, R *dh_all)
{
    const int64_t BH = B * H, G = 3 * H;
    R *Pw = SFX(packed_alloc)(G, H, 1);
    if (!Pw) return -1;                      /* out of memory */
    const int nt = rk_threads(2 * B * G * H, G * H * (int64_t)sizeof(R), PANELS(H));
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t b0, b1, p0, p1;
        rk_rows(B, &b0, &b1);
        rk_rows(PANELS(H), &p0, &p1);
        SFX(pack_all)(G, H, w_hh, 0, Pw);
        for (int64_t t = T - 1; t >= 0; t--) {
            for (int64_t b = b0; b < b1; b++) {
                const int inside = !lens || t < lens[b];
                const int64_t o = t * BH + b * H, og = (t * B + b) * G;
                SFX(dh_row)(H, inside, dh + b * H, d_out ? d_out + o : NULL,
                            dh_all ? dh_all + o : NULL);
                if (inside) {
                    const R *gb = gates + og;
                    R *dab = da + og, *dub = du + og;
                    SFX(gru_row_bwd)(H, gb, gb + H, gb + 2 * H, hn + o, h + o, dh + b * H,
                                     dab, dab + H, dab + 2 * H, dub, dub + H, dub + 2 * H);
                    SFX(ln_row_bwd)(G, dub, n_hh + og, s_hh[t * B + b], ln, dv + og);
                } else {                     /* copied through: dh is carried */
                    memset(da + og, 0, (size_t)G * sizeof(R));
                    memset(du + og, 0, (size_t)G * sizeof(R));
                    memset(dv + og, 0, (size_t)G * sizeof(R));
                }
            }
            RK_BARRIER(nt);
            SFX(product_n)(B, H, G, dv + t * B * G, Pw, dh, p0, p1);       /* + W_hh^T dv_t */
            RK_BARRIER(nt);
        }
    }
    free(Pw);
    return 0;
}

/* Inference: a (T, B, 3H) the input side (overwritten); h (B, H) the state in
 * and out; work 3BH (each step's hidden side). */
static int SFX(gruln_inf)(int64_t T, int64_t B, int64_t H, const int64_t *lens, R *a,
                          const R *ln, const R *w_hh, R *h, R *y, R *work)
{
    const int64_t BH = B * H, N = 3 * H;
    R *Pw = SFX(packed_alloc)(H, N, T * B >= PACK_MIN_ROWS);
    const int nt = rk_threads(2 * B * N * H, N * H * (int64_t)sizeof(R), PANELS(N));
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t b0, b1, p0, p1;
        rk_rows(B, &b0, &b1);
        rk_rows(PANELS(N), &p0, &p1);
        if (Pw) SFX(pack_all)(H, N, w_hh, 1, Pw);
        for (int64_t t = 0; t < T; t++) {
            SFX(product_t)(B, N, H, h, w_hh, Pw, work, 0, p0, p1);
            RK_BARRIER(nt);
            for (int64_t b = b0; b < b1; b++) {
                R *yb = y + t * BH + b * H, s_v;
                if (lens && t >= lens[b]) {
                    memset(yb, 0, (size_t)H * sizeof(R));
                    continue;
                }
                SFX(gruln_row_fwd)(H, ln, a + (t * B + b) * N, work + b * N, &s_v, h + b * H,
                                   h + b * H, NULL);
                memcpy(yb, h + b * H, (size_t)H * sizeof(R));
            }
            RK_BARRIER(nt);
        }
    }
    free(Pw);
    return 0;
}

/* --------------------------------------------------------------------- IndRNN -- */

/* The loops of cells/indrnn.py.  a (T, B, H): W_ih x_t + b_ih + b_hh in (the
 * pre-activations a_t out, forward); u (H) the recurrent weights after the
 * bound; relu 1 (else tanh).  Units and sequences do not mix, so each thread
 * runs every step of its own rows: the threads meet only at the end, and are
 * used once a call has FLOPS_PER_THREAD of element-wise work per thread. */
static int SFX(indrnn_threads)(int64_t T, int64_t B, int64_t H)
{
    return rk_threads(4 * T * B * H, 0, B);
}

/* Forward: h (T+1, B, H) with h[0] set; y (T, B, H). */
static int SFX(indrnn_fwd)(int64_t T, int64_t B, int64_t H, const int64_t *lens, int relu, R *a,
                           const R *u, R *h, R *y)
{
    const int64_t BH = B * H;
    const int nt = SFX(indrnn_threads)(T, B, H);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t b0, b1;
        rk_rows(B, &b0, &b1);
        for (int64_t t = 0; t < T; t++)
            for (int64_t b = b0; b < b1; b++) {
                const int64_t o = t * BH + b * H;
                R *restrict ab = a + o, *restrict hn = h + BH + o;
                const R *restrict hp = h + o;
                for (int64_t j = 0; j < H; j++) ab[j] += u[j] * hp[j];           /* (1) */
                if (relu)                                                        /* (2) */
                    for (int64_t j = 0; j < H; j++) hn[j] = ab[j] > 0 ? ab[j] : (R)0;
                else
                    for (int64_t j = 0; j < H; j++) hn[j] = TANH(ab[j]);
                SFX(finish_row)(H, !lens || t < lens[b], hn, hp, NULL, NULL, y + o);
            }
    }
    return 0;
}

/* Backward: h from the forward; d_out or NULL; dh (B, H) d_final_state in, dh_0
 * out; da (T, B, H) out; du (B, H) out: sum_t da_t h_{t-1} per row (the caller
 * sums the rows: dL/du before the bound's mask); dh_all or NULL. */
static int SFX(indrnn_bwd)(int64_t T, int64_t B, int64_t H, const int64_t *lens, int relu,
                           const R *h, const R *u, const R *d_out, R *dh, R *da, R *du,
                           R *dh_all)
{
    const int64_t BH = B * H;
    const int nt = SFX(indrnn_threads)(T, B, H);
    memset(du, 0, (size_t)BH * sizeof(R));
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t b0, b1;
        rk_rows(B, &b0, &b1);
        for (int64_t t = T - 1; t >= 0; t--)
            for (int64_t b = b0; b < b1; b++) {
                const int inside = !lens || t < lens[b];
                const int64_t o = t * BH + b * H;
                R *restrict d = dh + b * H, *restrict dab = da + o, *restrict dub = du + b * H;
                const R *restrict hn = h + BH + o, *restrict hp = h + o;
                SFX(dh_row)(H, inside, d, d_out ? d_out + o : NULL, dh_all ? dh_all + o : NULL);
                if (!inside) {               /* copied through: dh is carried */
                    memset(dab, 0, (size_t)H * sizeof(R));
                    continue;
                }
                if (relu)                    /* through h_t = phi(a_t) */
                    for (int64_t j = 0; j < H; j++) dab[j] = hn[j] > 0 ? d[j] : (R)0;
                else
                    for (int64_t j = 0; j < H; j++) dab[j] = d[j] * (1 - hn[j] * hn[j]);
                for (int64_t j = 0; j < H; j++) {
                    dub[j] += dab[j] * hp[j];
                    d[j] = u[j] * dab[j];    /* into h_{t-1} through u h_{t-1} */
                }
            }
    }
    return 0;
}

/* Inference: a (T, B, H) read; h (B, H) the state in and out; y (T, B, H). */
static int SFX(indrnn_inf)(int64_t T, int64_t B, int64_t H, const int64_t *lens, int relu,
                           const R *a, const R *u, R *h, R *y)
{
    const int64_t BH = B * H;
    const int nt = SFX(indrnn_threads)(T, B, H);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t b0, b1;
        rk_rows(B, &b0, &b1);
        for (int64_t t = 0; t < T; t++)
            for (int64_t b = b0; b < b1; b++) {
                const int64_t o = t * BH + b * H;
                R *restrict yb = y + o, *restrict hb = h + b * H;
                const R *restrict ab = a + o;
                if (lens && t >= lens[b]) {
                    memset(yb, 0, (size_t)H * sizeof(R));
                    continue;
                }
                for (int64_t j = 0; j < H; j++) {
                    const R v = ab[j] + u[j] * hb[j];
                    yb[j] = relu ? (v > 0 ? v : (R)0) : TANH(v);
                }
                memcpy(hb, yb, (size_t)H * sizeof(R));
            }
    }
    return 0;
}

#endif /* RK_TEMPLATE */
