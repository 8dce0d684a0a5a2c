/*
 * Fused time loops for the RNN, LSTM and GRU cells (forward and BPTT).
 *
 * The math is exactly that of rnnkit/cells/{rnn,lstm,gru}.py (the readable
 * reference, whose module docstrings derive every line used here); this file
 * only changes *how* it is computed.  Python (rnnkit/fast/) does what happens
 * once per sequence — a large input projection of all steps, the checks — and
 * the whole time loop runs here (forward, backward and the cache-free inference
 * loops), as do the weight gradients after a backward loop that ran on several
 * threads and rnnkit.Linear's products (the last section):
 *
 *   forward, per step t:   G_t = x_t @ W_ih^T          (unless done before the loop)
 *                          G_t += h_{t-1} @ W_hh^T     (the recurrent product)
 *                          one fused pass of the gate arithmetic per row
 *   backward, per step t:  one fused pass per row: dh_t -> dz_t (and dc)
 *                          dh_{t-1} += dz_t @ W_hh
 *
 * How the loops compute (the packed recurrent product, threads, the float32
 * tanh, lengths) and how each file is compiled is described in _common.h,
 * which holds what this file and _variants.c share.
 */
#ifndef RK_TEMPLATE

#include "_common.h"

#define RK_TEMPLATE 32
#include "_kernels.c"      /* this file, as the template part, for float */
#undef RK_TEMPLATE
#define RK_TEMPLATE 64
#include "_kernels.c"      /* and for double */
#undef RK_TEMPLATE

/* This build's table of the plain loops (_fastrnn.h), named after its instruction set. */
#define RK_ENTRY_F32(name, params) name##_f32,
#define RK_ENTRY_F64(name, params) name##_f64,
const rk_table RK_CAT(rk_table_, RK_ISA) = {RK_STR(RK_ISA), {RK_KERNELS(RK_ENTRY_F32, float)},
                                           {RK_KERNELS(RK_ENTRY_F64, double)},
                                           &RK_CAT(rk_variants_, RK_ISA)};

#else /* RK_TEMPLATE: the kernels, for one real type R */

#include "_common.h"    /* the products and row helpers for R */

/* ------------------------------------------------------------------------ RNN -- */

/* a += bias (the pre-activation), h = phi(a). */
static inline void SFX(rnn_row_fwd)(int64_t H, int relu, R *restrict a, const R *restrict bias,
                                    R *restrict h)
{
    for (int64_t j = 0; j < H; j++) a[j] += bias[j];
    if (relu)
        for (int64_t j = 0; j < H; j++) h[j] = a[j] > 0 ? a[j] : (R)0;
    else
        for (int64_t j = 0; j < H; j++) h[j] = TANH(a[j]);
}

/* da = dh * phi'(a), with phi' written through h = phi(a); dh is consumed (0). */
static inline void SFX(rnn_row_bwd)(int64_t H, int relu, const R *restrict h,
                                    R *restrict dh, R *restrict da)
{
    if (relu)
        for (int64_t j = 0; j < H; j++) { da[j] = h[j] > 0 ? dh[j] : (R)0; dh[j] = 0; }
    else
        for (int64_t j = 0; j < H; j++) { da[j] = dh[j] * (1 - h[j] * h[j]); dh[j] = 0; }
}

/* Equations (2)-(4) of cells/lstm.py for one row: pre-activations (without the
 * bias b = b_ih + b_hh) in z_*, gates out. */
static inline void SFX(lstm_row_fwd)(int64_t H, R *restrict zi, R *restrict zf,
                                     R *restrict zg, R *restrict zo, const R *restrict b,
                                     const R *restrict cp, R *restrict cn, R *restrict tc,
                                     R *restrict hn)
{
    for (int64_t j = 0; j < H; j++) {
        const R i = SIGMOID(zi[j] + b[j]);
        const R f = SIGMOID(zf[j] + b[H + j]);
        const R g = TANH(zg[j] + b[2 * H + j]);
        const R o = SIGMOID(zo[j] + b[3 * H + j]);
        const R c = f * cp[j] + i * g;                /* (3) */
        const R th = TANH(c);
        zi[j] = i; zf[j] = f; zg[j] = g; zo[j] = o;
        cn[j] = c;
        tc[j] = th;
        hn[j] = o * th;                               /* (4) */
    }
}

/* The backward equations of cells/lstm.py for one row inside its sequence:
 * dh = dh_t (consumed: set to 0), dc = dc_t^(rec) in, dc_{t-1}^(rec) out. */
static inline void SFX(lstm_row_bwd)(int64_t H, const R *restrict i_, const R *restrict f_,
                                     const R *restrict g_, const R *restrict o_,
                                     const R *restrict cp, const R *restrict tc,
                                     R *restrict dh, R *restrict dc, R *restrict dzi,
                                     R *restrict dzf, R *restrict dzg, R *restrict dzo)
{
    for (int64_t j = 0; j < H; j++) {
        const R i = i_[j], f = f_[j], g = g_[j], o = o_[j], th = tc[j], d = dh[j];
        /* through h = o * tanh(c): into o, and into c on top of dc^(rec) */
        const R dc_hat = dc[j] + d * o * (1 - th * th);
        /* through c = f c_{t-1} + i g, then each gate's nonlinearity */
        dzi[j] = dc_hat * g * (i * (1 - i));
        dzf[j] = dc_hat * cp[j] * (f * (1 - f));
        dzg[j] = dc_hat * i * (1 - g * g);
        dzo[j] = d * th * (o * (1 - o));
        dc[j] = dc_hat * f;                           /* into c_{t-1} */
        dh[j] = 0;                                    /* all of dh_t went into dz */
    }
}

/* Equations (2)-(4) of cells/gru.py for one row: input side a_* (without its
 * bias ba = [b_ir + b_hr, b_iz + b_hz, b_in]) in, gates out. */
static inline void SFX(gru_row_fwd)(int64_t H, R *restrict ar, R *restrict az,
                                    R *restrict an, const R *restrict ba,
                                    const R *restrict ur, const R *restrict uz,
                                    const R *restrict un, const R *restrict b_hn,
                                    const R *restrict hp, R *restrict h, R *restrict hn)
{
    for (int64_t j = 0; j < H; j++) {
        const R r = SIGMOID(ar[j] + ba[j] + ur[j]);           /* (2) */
        const R z = SIGMOID(az[j] + ba[H + j] + uz[j]);
        const R hv = un[j] + b_hn[j];
        const R n = TANH(an[j] + ba[2 * H + j] + r * hv);     /* (3) */
        ar[j] = r; az[j] = z; an[j] = n;
        hn[j] = hv;
        h[j] = n + z * (hp[j] - n);                   /* (4) as n + z (h_{t-1} - n) */
    }
}

/* Inference rows (no cache): the same equations, with only the state kept.
 * h and c (B, H) are the state in and out; y is step t's output row. */
static inline void SFX(rnn_row_inf)(int64_t H, int relu, const R *restrict a,
                                    const R *restrict bias, R *restrict h, R *restrict y)
{
    if (relu)
        for (int64_t j = 0; j < H; j++) {
            const R v = a[j] + bias[j];
            h[j] = y[j] = v > 0 ? v : (R)0;
        }
    else
        for (int64_t j = 0; j < H; j++) h[j] = y[j] = TANH(a[j] + bias[j]);
}

static inline void SFX(lstm_row_inf)(int64_t n, int64_t H, const R *restrict z, const R *restrict b,
                                     R *restrict c, R *restrict h, R *restrict y)
{
    for (int64_t j = 0; j < n; j++) {             /* n channels; gate g of channel j at g*H + j */
        const R i = SIGMOID(z[j] + b[j]);
        const R f = SIGMOID(z[H + j] + b[H + j]);
        const R g = TANH(z[2 * H + j] + b[2 * H + j]);
        const R o = SIGMOID(z[3 * H + j] + b[3 * H + j]);
        const R cn = f * c[j] + i * g;                /* (3) */
        c[j] = cn;
        h[j] = y[j] = o * TANH(cn);                   /* (4) */
    }
}

static inline void SFX(gru_row_inf)(int64_t H, const R *restrict a, const R *restrict ba,
                                    const R *restrict u, const R *restrict b_hn,
                                    R *restrict h, R *restrict y)
{
    for (int64_t j = 0; j < H; j++) {
        const R r = SIGMOID(a[j] + ba[j] + u[j]);                         /* (2) */
        const R z = SIGMOID(a[H + j] + ba[H + j] + u[H + j]);
        const R n = TANH(a[2 * H + j] + ba[2 * H + j] + r * (u[2 * H + j] + b_hn[j]));  /* (3) */
        h[j] = y[j] = n + z * (h[j] - n);                                 /* (4) */
    }
}

/* Every loop below runs its steps in two phases, split among the threads in
 * two ways: the matrix products by columns (each thread its panels, for all
 * rows: it reads only its share of the weights, which then stays in its core's
 * cache), the element-wise work by rows (each thread its sequences).  A barrier
 * separates the phases; with one thread both are whole and the barriers cost
 * nothing. */

/* Forward loop.  a (T, B, H): the input projection W_ih x_t (x NULL) or scratch
 * for it (x given), the pre-activations on exit; bias (H) = b_ih + b_hh; h
 * (T+1, B, H) with h[0] = h0; w_hh (H, H); y (T, B, H). */
static int SFX(rnn_fwd)(int64_t T, int64_t B, int64_t H, const int64_t *lens, int relu, int64_t I,
                  const R *x, const R *w_ih, R *a, const R *bias, const R *w_hh, R *h, R *y)
{
    const int64_t BH = B * H;
    R *P = SFX(packed_alloc)(H, H, T * B >= PACK_MIN_ROWS);
    R *P_ih = SFX(input_panels)(T, B, I, H, x);
    const int64_t K = H + (x ? I : 0);         /* W_hh's depth, and W_ih's in the loop */
    const int nt = rk_threads(2 * B * H * K, H * K * (int64_t)sizeof(R), PANELS(H));
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t b0, b1, p0, p1;
        rk_rows(B, &b0, &b1);
        rk_rows(PANELS(H), &p0, &p1);
        if (P) SFX(pack_all)(H, H, w_hh, 1, P);
        if (P_ih) SFX(pack_all)(I, H, w_ih, 1, P_ih);
        for (int64_t t = 0; t < T; t++) {
            SFX(project_step)(t, B, I, H, x, w_ih, P_ih, a + t * BH, p0, p1);
            SFX(product_t)(B, H, H, h + t * BH, w_hh, P, a + t * BH, 1, p0, p1);   /* (1) */
            RK_BARRIER(nt);
            for (int64_t b = b0; b < b1; b++) {
                const int inside = !lens || t < lens[b];
                R *hn = h + (t + 1) * BH + b * H;
                SFX(rnn_row_fwd)(H, relu, a + t * BH + b * H, bias, hn);           /* (2) */
                SFX(finish_row)(H, inside, hn, h + t * BH + b * H, NULL, NULL,
                                y + t * BH + b * H);
            }
            RK_BARRIER(nt);
        }
    }
    free(P);
    free(P_ih);
    return 0;
}

/* Backward loop.  h (T+1, B, H) from the forward; w_hh (H, H); d_out (T, B, H)
 * or NULL; dh (B, H): dh_T^(rec) on entry, dh_0 on exit; da (T, B, H) out;
 * dh_all (T, B, H) or NULL. */
static int SFX(rnn_bwd)(int64_t T, int64_t B, int64_t H, const int64_t *lens, int relu,
                  const R *h, const R *w_hh, const R *d_out, R *dh, R *da, R *dh_all)
{
    const int64_t BH = B * H;
    R *P = SFX(packed_alloc)(H, H, 1);
    if (!P) return -1;                       /* out of memory */
    const int nt = rk_threads(2 * B * H * H, H * H * (int64_t)sizeof(R), PANELS(H));
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t b0, b1, p0, p1;
        rk_rows(B, &b0, &b1);
        rk_rows(PANELS(H), &p0, &p1);
        SFX(pack_all)(H, H, w_hh, 0, P);
        for (int64_t t = T - 1; t >= 0; t--) {
            for (int64_t b = b0; b < b1; b++) {
                const int inside = !lens || t < lens[b];
                R *dhb = dh + b * H, *dab = da + t * BH + b * H;
                SFX(dh_row)(H, inside, dhb, d_out ? d_out + t * BH + b * H : NULL,
                            dh_all ? dh_all + t * BH + b * H : NULL);
                if (inside)                     /* through h_t = phi(a_t) */
                    SFX(rnn_row_bwd)(H, relu, h + (t + 1) * BH + b * H, dhb, dab);
                else                            /* copied through: dh is carried */
                    memset(dab, 0, (size_t)H * sizeof(R));
            }
            RK_BARRIER(nt);
            SFX(product_n)(B, H, H, da + t * BH, P, dh, p0, p1);          /* + W_hh^T da_t */
            RK_BARRIER(nt);
        }
    }
    free(P);
    return 0;
}

/* ----------------------------------------------------------------------- LSTM -- */

/* Forward loop.  gates (T, B, 4H): the input projection W_ih x_t (x NULL) or
 * scratch for it (x given), the gates [i f g o] on exit; bias (4H) = b_ih + b_hh;
 * h, c (T+1, B, H) with h[0], c[0] set; tanh_c (T, B, H); w_hh (4H, H); y (T, B, H). */
static int SFX(lstm_fwd)(int64_t T, int64_t B, int64_t H, const int64_t *lens, int64_t I, const R *x,
                   const R *w_ih, R *gates, const R *bias, const R *w_hh, R *h, R *c,
                   R *tanh_c, R *y)
{
    const int64_t BH = B * H, N = 4 * H;
    R *P = SFX(packed_alloc)(H, N, T * B >= PACK_MIN_ROWS);
    R *P_ih = SFX(input_panels)(T, B, I, N, x);
    const int64_t K = H + (x ? I : 0);         /* W_hh's depth, and W_ih's in the loop */
    const int nt = rk_threads(2 * B * N * K, N * K * (int64_t)sizeof(R), PANELS(N));
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t b0, b1, p0, p1;
        rk_rows(B, &b0, &b1);
        rk_rows(PANELS(N), &p0, &p1);
        if (P) SFX(pack_all)(H, N, w_hh, 1, P);
        if (P_ih) SFX(pack_all)(I, N, w_ih, 1, P_ih);
        for (int64_t t = 0; t < T; t++) {
            R *z = gates + t * B * N;
            SFX(project_step)(t, B, I, N, x, w_ih, P_ih, z, p0, p1);
            SFX(product_t)(B, N, H, h + t * BH, w_hh, P, z, 1, p0, p1);            /* (1) */
            RK_BARRIER(nt);
            for (int64_t b = b0; b < b1; b++) {
                const int64_t o = t * BH + b * H;   /* row b of step t's (B, H) arrays */
                R *zb = z + b * N;
                SFX(lstm_row_fwd)(H, zb, zb + H, zb + 2 * H, zb + 3 * H, bias, c + o, c + BH + o,
                                  tanh_c + o, h + BH + o);                     /* (2)-(4) */
                SFX(finish_row)(H, !lens || t < lens[b], h + BH + o, h + o, c + BH + o,
                                c + o, y + o);
            }
            RK_BARRIER(nt);
        }
    }
    free(P);
    free(P_ih);
    return 0;
}

/* Backward loop.  gates, c, tanh_c from the forward; w_hh (4H, H); d_out
 * (T, B, H) or NULL; dh, dc (B, H): d_final_state on entry, (dh_0, dc_0) on
 * exit; dz (T, B, 4H) out; dh_all (T, B, H) or NULL. */
static int SFX(lstm_bwd)(int64_t T, int64_t B, int64_t H, const int64_t *lens, const R *gates,
                   const R *c, const R *tanh_c, const R *w_hh, const R *d_out, R *dh, R *dc,
                   R *dz, R *dh_all)
{
    const int64_t BH = B * H, G = 4 * H;
    R *P = SFX(packed_alloc)(G, H, 1);
    if (!P) return -1;                       /* out of memory */
    const int nt = rk_threads(2 * B * G * H, G * H * (int64_t)sizeof(R), PANELS(H));
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t b0, b1, p0, p1;
        rk_rows(B, &b0, &b1);
        rk_rows(PANELS(H), &p0, &p1);
        SFX(pack_all)(G, H, w_hh, 0, P);
        for (int64_t t = T - 1; t >= 0; t--) {
            for (int64_t b = b0; b < b1; b++) {
                const int inside = !lens || t < lens[b];
                const int64_t o = t * BH + b * H;
                const R *zb = gates + t * B * G + b * G;
                R *dzb = dz + t * B * G + b * G;
                SFX(dh_row)(H, inside, dh + b * H, d_out ? d_out + o : NULL,
                            dh_all ? dh_all + o : NULL);
                if (inside)
                    SFX(lstm_row_bwd)(H, zb, zb + H, zb + 2 * H, zb + 3 * H, c + o, tanh_c + o,
                                      dh + b * H, dc + b * H, dzb, dzb + H, dzb + 2 * H,
                                      dzb + 3 * H);
                else                            /* copied through: dh, dc are carried */
                    memset(dzb, 0, (size_t)G * sizeof(R));
            }
            RK_BARRIER(nt);
            SFX(product_n)(B, H, G, dz + t * B * G, P, dh, p0, p1);        /* + W_hh^T dz_t */
            RK_BARRIER(nt);
        }
    }
    free(P);
    return 0;
}

/* ------------------------------------------------------------------------ GRU -- */

/* Forward loop.  a (T, B, 3H): the input projection W_ih x_t (x NULL) or scratch
 * for it (x given), the gates [r z n] on exit; ba (3H) = [b_ir + b_hr, b_iz + b_hz,
 * b_in]; u (B, 3H) scratch for the hidden side; b_hn (H); h (T+1, B, H) with h[0]
 * set; hn (T, B, H); w_hh (3H, H). */
static int SFX(gru_fwd)(int64_t T, int64_t B, int64_t H, const int64_t *lens, int64_t I, const R *x,
                  const R *w_ih, R *a, const R *ba, R *u, const R *b_hn, const R *w_hh, R *h,
                  R *hn, R *y)
{
    const int64_t BH = B * H, N = 3 * H;
    R *P = SFX(packed_alloc)(H, N, T * B >= PACK_MIN_ROWS);
    R *P_ih = SFX(input_panels)(T, B, I, N, x);
    const int64_t K = H + (x ? I : 0);         /* W_hh's depth, and W_ih's in the loop */
    const int nt = rk_threads(2 * B * N * K, N * K * (int64_t)sizeof(R), PANELS(N));
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t b0, b1, p0, p1;
        rk_rows(B, &b0, &b1);
        rk_rows(PANELS(N), &p0, &p1);
        if (P) SFX(pack_all)(H, N, w_hh, 1, P);
        if (P_ih) SFX(pack_all)(I, N, w_ih, 1, P_ih);
        for (int64_t t = 0; t < T; t++) {
            SFX(project_step)(t, B, I, N, x, w_ih, P_ih, a + t * B * N, p0, p1);
            SFX(product_t)(B, N, H, h + t * BH, w_hh, P, u, 0, p0, p1);            /* (1) */
            RK_BARRIER(nt);
            for (int64_t b = b0; b < b1; b++) {
                const int64_t o = t * BH + b * H;
                R *ab = a + t * B * N + b * N;
                const R *ub = u + b * N;
                SFX(gru_row_fwd)(H, ab, ab + H, ab + 2 * H, ba, ub, ub + H, ub + 2 * H, b_hn,
                                 h + o, h + BH + o, hn + o);                   /* (2)-(4) */
                SFX(finish_row)(H, !lens || t < lens[b], h + BH + o, h + o, NULL, NULL, y + o);
            }
            RK_BARRIER(nt);
        }
    }
    free(P);
    free(P_ih);
    return 0;
}

/* Backward loop.  gates, hn, h from the forward; w_hh (3H, H); d_out or NULL;
 * dh (B, H): dh_T^(rec) on entry, dh_0 on exit; da, du (T, B, 3H) out: the
 * input-side and hidden-side pre-activation gradients; dh_all or NULL. */
static int SFX(gru_bwd)(int64_t T, int64_t B, int64_t H, const int64_t *lens, const R *gates,
                  const R *hn, const R *h, const R *w_hh, const R *d_out, R *dh, R *da,
                  R *du, R *dh_all)
{
    const int64_t BH = B * H, G = 3 * H;
    R *P = SFX(packed_alloc)(G, H, 1);
    if (!P) return -1;                       /* out of memory */
    const int nt = rk_threads(2 * B * G * H, G * H * (int64_t)sizeof(R), PANELS(H));
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t b0, b1, p0, p1;
        rk_rows(B, &b0, &b1);
        rk_rows(PANELS(H), &p0, &p1);
        SFX(pack_all)(G, H, w_hh, 0, P);
        for (int64_t t = T - 1; t >= 0; t--) {
            for (int64_t b = b0; b < b1; b++) {
                const int inside = !lens || t < lens[b];
                const int64_t o = t * BH + b * H, og = t * B * G + b * G;
                SFX(dh_row)(H, inside, dh + b * H, d_out ? d_out + o : NULL,
                            dh_all ? dh_all + o : NULL);
                if (inside) {
                    const R *gb = gates + og;
                    R *dab = da + og, *dub = du + og;
                    SFX(gru_row_bwd)(H, gb, gb + H, gb + 2 * H, hn + o, h + o, dh + b * H,
                                     dab, dab + H, dab + 2 * H, dub, dub + H, dub + 2 * H);
                } else {                        /* copied through: dh is carried */
                    memset(da + og, 0, (size_t)G * sizeof(R));
                    memset(du + og, 0, (size_t)G * sizeof(R));
                }
            }
            RK_BARRIER(nt);
            SFX(product_n)(B, H, G, du + t * B * G, P, dh, p0, p1);        /* + W_hh^T du_t */
            RK_BARRIER(nt);
        }
    }
    free(P);
    return 0;
}

/* ------------------------------------------------------------------ inference -- */

/* The forward loops without a cache, for inference: only the state is carried
 * from step to step, so nothing of size T but the outputs is written.
 * h (and c) (B, H): the initial state on entry, the final state on exit;
 * y (T, B, H).  Past a sequence's end its state is kept and its outputs are 0.
 * The input projection: with x NULL, a (T, B, G*H) holds it on entry (and is
 * overwritten); with x (T, B, I) given, each step projects its own inputs with
 * w_ih (G*H, I) into a (B, G*H). */

static int SFX(rnn_inf)(int64_t T, int64_t B, int64_t H, const int64_t *lens, int relu, int64_t I,
                  const R *x, const R *w_ih, R *a, const R *bias, const R *w_hh, R *h, R *y)
{
    const int64_t BH = B * H;
    R *P = SFX(packed_alloc)(H, H, T * B >= PACK_MIN_ROWS);
    R *P_ih = SFX(input_panels)(T, B, I, H, x);
    const int64_t K = H + (x ? I : 0);         /* W_hh's depth, and W_ih's in the loop */
    const int nt = rk_threads(2 * B * H * K, H * K * (int64_t)sizeof(R), PANELS(H));
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t b0, b1, p0, p1;
        rk_rows(B, &b0, &b1);
        rk_rows(PANELS(H), &p0, &p1);
        if (P) SFX(pack_all)(H, H, w_hh, 1, P);
        if (P_ih) SFX(pack_all)(I, H, w_ih, 1, P_ih);
        for (int64_t t = 0; t < T; t++) {
            R *at = x ? a : a + t * BH;
            SFX(project_step)(t, B, I, H, x, w_ih, P_ih, at, p0, p1);
            SFX(product_t)(B, H, H, h, w_hh, P, at, 1, p0, p1);
            RK_BARRIER(nt);
            for (int64_t b = b0; b < b1; b++) {
                R *yb = y + t * BH + b * H;
                if (lens && t >= lens[b]) memset(yb, 0, (size_t)H * sizeof(R));
                else SFX(rnn_row_inf)(H, relu, at + b * H, bias, h + b * H, yb);
            }
            RK_BARRIER(nt);
        }
    }
    free(P);
    free(P_ih);
    return 0;
}

static int SFX(lstm_inf)(int64_t T, int64_t B, int64_t H, const int64_t *lens, int64_t I, const R *x,
                   const R *w_ih, R *gates, const R *bias, const R *w_hh, R *h, R *c, R *y)
{
    const int64_t BH = B * H, N = 4 * H;
    R *P = SFX(packed_alloc)(H, N, T * B >= PACK_MIN_ROWS);
    R *P_ih = SFX(input_panels)(T, B, I, N, x);
    const int64_t K = H + (x ? I : 0);         /* W_hh's depth, and W_ih's in the loop */
    const int nt = rk_threads(2 * B * N * K, N * K * (int64_t)sizeof(R), PANELS(N));
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t b0, b1, p0, p1;
        rk_rows(B, &b0, &b1);
        rk_rows(PANELS(N), &p0, &p1);
        if (P) SFX(pack_all)(H, N, w_hh, 1, P);
        if (P_ih) SFX(pack_all)(I, N, w_ih, 1, P_ih);
        for (int64_t t = 0; t < T; t++) {
            R *z = x ? gates : gates + t * B * N;
            SFX(project_step)(t, B, I, N, x, w_ih, P_ih, z, p0, p1);
            SFX(product_t)(B, N, H, h, w_hh, P, z, 1, p0, p1);
            RK_BARRIER(nt);
            for (int64_t b = b0; b < b1; b++) {
                R *yb = y + t * BH + b * H;
                if (lens && t >= lens[b]) memset(yb, 0, (size_t)H * sizeof(R));
                else SFX(lstm_row_inf)(H, H, z + b * N, bias, c + b * H, h + b * H, yb);
            }
            RK_BARRIER(nt);
        }
    }
    free(P);
    free(P_ih);
    return 0;
}

/* u (B, 3H): scratch for each step's hidden side; ba, b_hn as for gru_fwd. */
static int SFX(gru_inf)(int64_t T, int64_t B, int64_t H, const int64_t *lens, int64_t I, const R *x,
                  const R *w_ih, R *a, const R *ba, R *u, const R *b_hn, const R *w_hh, R *h,
                  R *y)
{
    const int64_t BH = B * H, N = 3 * H;
    R *P = SFX(packed_alloc)(H, N, T * B >= PACK_MIN_ROWS);
    R *P_ih = SFX(input_panels)(T, B, I, N, x);
    const int64_t K = H + (x ? I : 0);         /* W_hh's depth, and W_ih's in the loop */
    const int nt = rk_threads(2 * B * N * K, N * K * (int64_t)sizeof(R), PANELS(N));
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t b0, b1, p0, p1;
        rk_rows(B, &b0, &b1);
        rk_rows(PANELS(N), &p0, &p1);
        if (P) SFX(pack_all)(H, N, w_hh, 1, P);
        if (P_ih) SFX(pack_all)(I, N, w_ih, 1, P_ih);
        for (int64_t t = 0; t < T; t++) {
            R *at = x ? a : a + t * B * N;
            SFX(project_step)(t, B, I, N, x, w_ih, P_ih, at, p0, p1);
            SFX(product_t)(B, N, H, h, w_hh, P, u, 0, p0, p1);
            RK_BARRIER(nt);
            for (int64_t b = b0; b < b1; b++) {
                R *yb = y + t * BH + b * H;
                if (lens && t >= lens[b]) memset(yb, 0, (size_t)H * sizeof(R));
                else SFX(gru_row_inf)(H, at + b * N, ba, u + b * N, b_hn, h + b * H, yb);
            }
            RK_BARRIER(nt);
        }
    }
    free(P);
    free(P_ih);
    return 0;
}

/* ------------------------------------------------------------ weight gradients -- */

/* After a backward loop, what rnnkit/cells/_common.py's param_grads computes with
 * NumPy, here on the loop's own threads (a BLAS with threads of its own would
 * compete with them for the cores):
 *
 *   dW_ih = dA^T x,   dW_hh = dHH^T h,   db_a, db_hh = the sums of dA's and dHH's rows,
 *   dx = dA W_ih
 *
 * over the M = T*B rows of a sequence.  The products are blocked as a BLAS
 * blocks them: for each slice of KC depths the right operand's slice is packed
 * into panels of NR columns (about 24 KB each, so a panel stays in L1 while the
 * micro-kernel runs down the rows), and for each chunk of MC rows the left
 * operand's chunk is packed in micro-panels of RK_MR rows, read in order. */

#define RK_MC 384                 /* rows of C per packed chunk of the left operand */
/* With this many panels of B or fewer the left operand is read where it is: packing
 * it would cost about as much as the product that reads it once or twice. */
#define RK_DIRECT_PANELS 2

/* Depths per slice of a product of depth K: a packed panel (KC x NR) of about 24 KB,
 * or all K when that is at most eight times as deep: each slice reads and writes C
 * once more, which costs more than the panel's L1 misses when C is large and K
 * small (Linear's forward into a large vocabulary). */
static inline int64_t SFX(grad_kc)(int64_t K)
{
    int64_t kc = 24576 / (NR * (int64_t)sizeof(R));
    if (kc < 64) kc = 64;
    return K <= 8 * kc ? (K > 0 ? K : 1) : kc;
}

/* Rows [0, mc) of Aop, depths [0, kc), into micro-panels of RK_MR rows:
 * Ap[(m / RK_MR) * kc * RK_MR + k * RK_MR + m % RK_MR] = Aop(m, k) (element (m, k)
 * at A[m*rs + k*ks]), zero past mc; sum[m] += the row's sum when sum is not NULL.
 * Read along whichever of m and k is contiguous: a walk down a column of a row-major
 * array (rs = 1) strides by whole rows, often 4 KB apart, which share an L1 set. */
static void SFX(pack_rows)(int64_t mc, int64_t kc, const R *A, int64_t rs, int64_t ks, R *Ap,
                           R *sum)
{
    const int64_t blocks = (mc + RK_MR - 1) / RK_MR;
    if (rs == 1) {                                  /* row k of the slice is contiguous */
        for (int64_t k = 0; k < kc; k++) {
            const R *a = A + k * ks;
            for (int64_t i = 0; i < blocks; i++) {
                R *dst = Ap + i * kc * RK_MR + k * RK_MR;
                const int64_t mr = mc - i * RK_MR < RK_MR ? mc - i * RK_MR : RK_MR;
                for (int64_t r = 0; r < mr; r++) dst[r] = a[i * RK_MR + r];
                for (int64_t r = mr; r < RK_MR; r++) dst[r] = 0;
            }
            if (sum)
                for (int64_t m = 0; m < mc; m++) sum[m] += a[m];
        }
        return;
    }
    for (int64_t i = 0; i < blocks; i++) {          /* row m of Aop is contiguous (ks = 1) */
        R *blk = Ap + i * kc * RK_MR;
        for (int64_t r = 0; r < RK_MR; r++) {
            const int64_t m = i * RK_MR + r;
            if (m >= mc) {
                for (int64_t k = 0; k < kc; k++) blk[k * RK_MR + r] = 0;
                continue;
            }
            const R *a = A + m * rs;
            R s = 0;
            for (int64_t k = 0; k < kc; k++) {
                const R v = a[k * ks];
                blk[k * RK_MR + r] = v;
                s += v;
            }
            if (sum) sum[m] += s;
        }
    }
}

/* Depths [k0, k0 + kc) of B (K, N) into panels of NR columns, Bp[p][k][j], zero
 * past N: B row-major, or (bt) B = W^T for W (N, K) row-major. */
static void SFX(pack_slice)(int64_t k0, int64_t kc, int64_t K, int64_t N, const R *B, int bt,
                            R *Bp)
{
    for (int64_t p = 0; p < PANELS(N); p++)
        SFX(pack_panel)(kc, N, bt ? B + k0 : B + k0 * N, bt ? K : N, bt, Bp, p);
}

/* Rows [m0, m1) of C (M, N) = Aop (M, K) @ B (K, N), overwritten: element (m, k)
 * of Aop at A[m*rs + k*ks] (rs = 1, ks = N' reads the transpose of a (K, N')
 * array); B row-major, or (bt) B = W^T for W (N, K); rowsum[m] = the sum of
 * Aop's row m when rowsum is not NULL.  Scratch: Ap RK_MC * KC, Bp PANELS(N) *
 * KC * NR elements. */
static void SFX(gemm_rows)(int64_t m0, int64_t m1, int64_t N, int64_t K, const R *A,
                           int64_t rs, int64_t ks, const R *B, int bt, R *C, R *rowsum, R *Ap,
                           R *Bp)
{
    const int64_t KC = SFX(grad_kc)(K);
    if (rowsum)
        for (int64_t m = m0; m < m1; m++) rowsum[m] = 0;
    for (int64_t k0 = 0; k0 < K; k0 += KC) {
        const int64_t kc = K - k0 < KC ? K - k0 : KC;
        SFX(pack_slice)(k0, kc, K, N, B, bt, Bp);
        if (PANELS(N) <= RK_DIRECT_PANELS && (!rowsum || rs == 1)) {   /* Aop in place */
            if (rowsum)                                 /* row k of the slice is contiguous */
                for (int64_t k = 0; k < kc; k++)
                    SFX(add_row)(m1 - m0, rowsum + m0, A + (k0 + k) * ks + m0);
            for (int64_t p = 0; p < PANELS(N); p++) {
                const int64_t nc = N - p * NR < NR ? N - p * NR : NR;
                const R *Pp = Bp + p * kc * NR;
                for (int64_t m = m0; m < m1; m += RK_MR) {
                    const R *a = A + m * rs + k0 * ks;
                    R *c = C + m * N + p * NR;
                    if (m1 - m >= RK_MR)
                        SFX(micro)(RK_MR, nc, kc, a, rs, ks, Pp, c, N, k0 > 0);
                    else
                        SFX(micro)((int)(m1 - m), nc, kc, a, rs, ks, Pp, c, N, k0 > 0);
                }
            }
            continue;
        }
        for (int64_t c0 = m0; c0 < m1; c0 += RK_MC) {
            const int64_t mc = m1 - c0 < RK_MC ? m1 - c0 : RK_MC;
            SFX(pack_rows)(mc, kc, A + c0 * rs + k0 * ks, rs, ks, Ap, rowsum ? rowsum + c0 : NULL);
            for (int64_t p = 0; p < PANELS(N); p++) {
                const int64_t nc = N - p * NR < NR ? N - p * NR : NR;
                const R *Pp = Bp + p * kc * NR;
                for (int64_t i = 0; i < mc; i += RK_MR) {
                    const R *a = Ap + i * kc;
                    R *c = C + (c0 + i) * N + p * NR;
                    if (mc - i >= RK_MR)
                        SFX(micro)(RK_MR, nc, kc, a, 1, RK_MR, Pp, c, N, k0 > 0);
                    else
                        SFX(micro)((int)(mc - i), nc, kc, a, 1, RK_MR, Pp, c, N, k0 > 0);
                }
            }
        }
    }
}

/* This thread's rows [*m0, *m1) of M, in whole micro-panels of RK_MR rows. */
static void SFX(panel_rows)(int64_t M, int64_t *m0, int64_t *m1)
{
    const int64_t blocks = (M + RK_MR - 1) / RK_MR;
    int64_t b0, b1;
    rk_rows(blocks, &b0, &b1);
    *m0 = b0 * RK_MR < M ? b0 * RK_MR : M;
    *m1 = b1 * RK_MR < M ? b1 * RK_MR : M;
}

/* dA, dHH (M, N); x (M, I); h (M, H): h_0 .. h_{T-1}; w_ih (N, I) -> dw_ih (N, I),
 * dw_hh (N, H), db_a and db_hh (N), dx (M, I); any of them may be NULL (not
 * computed; dw_ih NULL also skips db_a, dw_hh NULL db_hh: rnnkit.Linear's backward
 * is dw_ih, db_a and dx alone).  Returns -1 when a thread could not allocate its
 * scratch. */
static int SFX(grads)(int64_t M, int64_t N, int64_t I, int64_t H, const R *dA, const R *dHH,
                      const R *x, const R *h, const R *w_ih, R *dw_ih, R *dw_hh, R *db_a,
                      R *db_hh, R *dx)
{
    const int64_t KC = SFX(grad_kc)(M) > SFX(grad_kc)(N) ? SFX(grad_kc)(M) : SFX(grad_kc)(N);
    const int64_t panels = PANELS(I) > PANELS(H) ? PANELS(I) : PANELS(H);
    int64_t nt = rk_max_threads();
    const int64_t by_work = M * N * (2 * I + H) / (8 * rk_flops_per_thread + 1);
    if (rk_flops_per_thread > 0 && nt > by_work) nt = by_work;
    if (nt < 1) nt = 1;
    int failed = 0;
#pragma omp parallel num_threads((int)nt) if (nt > 1) reduction(| : failed)
    {
        R *Ap = (R *)malloc((size_t)(RK_MC * KC) * sizeof(R));
        R *Bp = (R *)malloc((size_t)(panels * KC * NR) * sizeof(R));
        if (!Ap || !Bp) {
            failed = 1;
        } else {
            int64_t r0, r1;
            SFX(panel_rows)(N, &r0, &r1);
            if (dw_ih) SFX(gemm_rows)(r0, r1, I, M, dA, 1, N, x, 0, dw_ih, db_a, Ap, Bp);
            if (dw_hh) SFX(gemm_rows)(r0, r1, H, M, dHH, 1, N, h, 0, dw_hh, db_hh, Ap, Bp);
            if (dx) {
                SFX(panel_rows)(M, &r0, &r1);
                SFX(gemm_rows)(r0, r1, I, N, dA, N, 1, w_ih, 0, dx, NULL, Ap, Bp);
            }
        }
        free(Ap);
        free(Bp);
    }
    return failed ? -1 : 0;
}

/* y (M, N) = x (M, K) @ W^T + b for W (N, K), b (N) or NULL: rnnkit.Linear's forward
 * on the loops' threads, split by rows.  Returns -1 when a thread could not
 * allocate its scratch. */
static int SFX(linear_fwd)(int64_t M, int64_t N, int64_t K, const R *x, const R *w,
                           const R *b, R *y)
{
    const int64_t KC = SFX(grad_kc)(K);
    int64_t nt = rk_max_threads();
    const int64_t by_work = M * N * K / (8 * rk_flops_per_thread + 1);
    if (rk_flops_per_thread > 0 && nt > by_work) nt = by_work;
    if (nt < 1) nt = 1;
    int failed = 0;
#pragma omp parallel num_threads((int)nt) if (nt > 1) reduction(| : failed)
    {
        R *Ap = (R *)malloc((size_t)(RK_MC * KC) * sizeof(R));
        R *Bp = (R *)malloc((size_t)(PANELS(N) * KC * NR) * sizeof(R));
        if (!Ap || !Bp) {
            failed = 1;
        } else {
            int64_t m0, m1;
            SFX(panel_rows)(M, &m0, &m1);
            SFX(gemm_rows)(m0, m1, N, K, x, K, 1, w, 1, y, NULL, Ap, Bp);
            if (b)
                for (int64_t m = m0; m < m1; m++) SFX(add_row)(N, y + m * N, b);
        }
        free(Ap);
        free(Bp);
    }
    return failed ? -1 : 0;
}

/* One GRU row's gate arithmetic for n channels (gate g of channel j at g*H + j),
 * from the state hp to hn (two arrays: the generation stack's states alternate). */
static inline void SFX(gru_row_step)(int64_t n, int64_t H, const R *restrict a, const R *restrict ba,
                                     const R *restrict u, const R *restrict b_hn, const R *restrict hp,
                                     R *restrict hn, R *restrict y)
{
    for (int64_t j = 0; j < n; j++) {
        const R r = SIGMOID(a[j] + ba[j] + u[j]);
        const R z = SIGMOID(a[H + j] + ba[H + j] + u[H + j]);
        const R nn = TANH(a[2 * H + j] + ba[2 * H + j] + r * (u[2 * H + j] + b_hn[j]));
        hn[j] = y[j] = nn + z * (hp[j] - nn);
    }
}

/* A whole stack of L unidirectional layers for a short call (a generation step):
 * one call from Python instead of one per layer, and one parallel region.  cell 0
 * RNN (relu or tanh), 1 LSTM, 2 GRU; x (T, B, I0); w: 4 addresses per layer,
 * W_ih (G*H, I_l), W_hh (G*H, H), b_ih and b_hh (G*H) or 0 for none; h (and c)
 * (L, B, H): the initial states on entry, the final ones on exit; y (T, B, H):
 * the last layer's outputs; work: L (G H + H) + 2 B G H + T B H + 2 B H scratch
 * (each layer's folded biases, one step's input and hidden sides, the outputs of
 * every other layer, the states of two steps).
 *
 * Each thread takes a range of hidden channels (whole vectors) and computes those
 * channels of every gate: their columns of x_t W_ih^T and h W_hh^T (it reads only
 * its rows of the weights, which stay in its core's cache), then their gate
 * arithmetic.  So one barrier per step suffices: the next step's products read
 * the whole new h.  New states go to two buffers in turn, so a thread that is
 * ahead never writes the h another still reads.  Each output is computed by the
 * same operations whatever the thread count (gemm_nt's columns are independent). */
static int SFX(stack_inf)(int64_t cell, int relu, int64_t L, int64_t T, int64_t B, int64_t H,
                    int64_t I0, const R *x, const R *const *w, R *h, R *c, R *y, R *work)
{
    const int64_t G = cell == 1 ? 4 : cell == 2 ? 3 : 1, N = G * H, BH = B * H;
    R *biases = work, *a = work + L * (N + H), *u = a + B * N, *buf = u + B * N, *hb = buf + T * BH;
    int64_t flops = 0, bytes = 0;
    for (int64_t l = 0; l < L; l++) {
        const R *b_ih = w[4 * l + 2], *b_hh = w[4 * l + 3];
        R *bias = biases + l * (N + H), *b_hn = bias + N;
        if (cell == 2) {                     /* ba = [b_ir + b_hr, b_iz + b_hz, b_in], b_hn */
            for (int64_t j = 0; j < N; j++)
                bias[j] = (b_ih ? b_ih[j] : 0) + (b_hh && j < 2 * H ? b_hh[j] : 0);
            for (int64_t j = 0; j < H; j++) b_hn[j] = b_hh ? b_hh[2 * H + j] : 0;
        } else {                             /* b_ih + b_hh */
            for (int64_t j = 0; j < N; j++) bias[j] = (b_ih ? b_ih[j] : 0) + (b_hh ? b_hh[j] : 0);
        }
        const int64_t K = (l ? H : I0) + H;
        flops += 2 * B * N * K;
        bytes += N * K * (int64_t)sizeof(R);
    }
    const int64_t blocks = (H + VW - 1) / VW;
    const int nt = rk_threads(flops, bytes, blocks);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t b0, b1;
        rk_rows(blocks, &b0, &b1);
        const int64_t j0 = b0 * VW < H ? b0 * VW : H, j1 = b1 * VW < H ? b1 * VW : H, n = j1 - j0;
        const R *in = x;
        for (int64_t l = 0; l < L; l++) {
            const R *w_ih = w[4 * l + 0], *w_hh = w[4 * l + 1];
            const R *bias = biases + l * (N + H), *b_hn = bias + N;
            const int64_t I = l ? H : I0;
            R *out = (L - 1 - l) % 2 == 0 ? y : buf;    /* alternate; the last layer writes y */
            R *hl = h + l * BH, *cl = c ? c + l * BH : NULL;
            const R *hp = hl;                           /* the state before step t */
            for (int64_t t = 0; t < T; t++) {
                R *hn = hb + (t % 2) * BH;              /* the state after it */
                for (int64_t g = 0; g < G && n > 0; g++) {
                    const int64_t c0 = g * H + j0, c1 = g * H + j1;
                    SFX(gemm_nt)(B, N, I, in + t * B * I, w_ih, a, 0, c0, c1);
                    if (cell == 2) SFX(gemm_nt)(B, N, H, hp, w_hh, u, 0, c0, c1);
                    else SFX(gemm_nt)(B, N, H, hp, w_hh, a, 1, c0, c1);
                }
                for (int64_t b = 0; b < B && n > 0; b++) {
                    R *yb = out + t * BH + b * H + j0, *hnb = hn + b * H + j0;
                    const R *ab = a + b * N + j0;
                    if (cell == 1)
                        SFX(lstm_row_inf)(n, H, ab, bias + j0, cl + b * H + j0, hnb, yb);
                    else if (cell == 2)
                        SFX(gru_row_step)(n, H, ab, bias + j0, u + b * N + j0, b_hn + j0, hp + b * H + j0,
                                          hnb, yb);
                    else
                        SFX(rnn_row_inf)(n, relu, ab, bias + j0, hnb, yb);
                }
                hp = hn;
                RK_BARRIER(nt);
            }
            for (int64_t b = 0; b < B && n > 0; b++)   /* every read of this layer's h is done */
                memcpy(hl + b * H + j0, hp + b * H + j0, (size_t)n * sizeof(R));
            in = out;
        }
    }
    return 0;
}

#endif /* RK_TEMPLATE */
