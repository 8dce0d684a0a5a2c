/*
 * The kernels' interface, declared once: what _kernels.c (the plain cells) and
 * _variants.c (the LSTM with projection and/or layer norm, the layer-normalised
 * GRU, IndRNN) define, once per instruction set they are compiled for, and what
 * the extension module _fastrnn.c calls.  The compiler checks both sides
 * against these lines.
 */
#ifndef RK_FASTRNN_H
#define RK_FASTRNN_H

#include <stdint.h>

/* The Python side checks it (rnnkit.fast): a stale build is not loaded. */
#define RK_ABI_VERSION 13

/* Products (FLOPs) per step that each thread of a loop needs before the loop is
 * split among threads; see rk_threads in _kernels.c. */
#define RK_FLOPS_PER_THREAD (1 << 18)

/* The loops for one real type R.  Each returns 0, or -1 when it could not
 * allocate its packed copy of the weights.  _kernels.c (RK_KERNELS) and
 * _variants.c (RK_VARIANTS) document the arguments. */
#define RK_KERNELS(X, R)                                                                         \
    X(rnn_fwd, (int64_t T, int64_t B, int64_t H, const int64_t *lens, int relu, int64_t I,      \
                const R *x, const R *w_ih, R *a, const R *bias, const R *w_hh, R *h, R *y))     \
    X(rnn_bwd, (int64_t T, int64_t B, int64_t H, const int64_t *lens, int relu, const R *h,     \
                const R *w_hh, const R *d_out, R *dh, R *da, R *dh_all))                        \
    X(lstm_fwd, (int64_t T, int64_t B, int64_t H, const int64_t *lens, int64_t I, const R *x,   \
                 const R *w_ih, R *gates, const R *bias, const R *w_hh, R *h, R *c, R *tanh_c,  \
                 R *y))                                                                         \
    X(lstm_bwd, (int64_t T, int64_t B, int64_t H, const int64_t *lens, const R *gates,          \
                 const R *c, const R *tanh_c, const R *w_hh, const R *d_out, R *dh, R *dc,      \
                 R *dz, R *dh_all))                                                             \
    X(gru_fwd, (int64_t T, int64_t B, int64_t H, const int64_t *lens, int64_t I, const R *x,    \
                const R *w_ih, R *a, const R *ba, R *u, const R *b_hn, const R *w_hh, R *h,     \
                R *hn, R *y))                                                                   \
    X(gru_bwd, (int64_t T, int64_t B, int64_t H, const int64_t *lens, const R *gates,           \
                const R *hn, const R *h, const R *w_hh, const R *d_out, R *dh, R *da, R *du,    \
                R *dh_all))                                                                     \
    X(rnn_inf, (int64_t T, int64_t B, int64_t H, const int64_t *lens, int relu, int64_t I,      \
                const R *x, const R *w_ih, R *a, const R *bias, const R *w_hh, R *h, R *y))     \
    X(lstm_inf, (int64_t T, int64_t B, int64_t H, const int64_t *lens, int64_t I, const R *x,   \
                 const R *w_ih, R *gates, const R *bias, const R *w_hh, R *h, R *c, R *y))      \
    X(gru_inf, (int64_t T, int64_t B, int64_t H, const int64_t *lens, int64_t I, const R *x,    \
                const R *w_ih, R *a, const R *ba, R *u, const R *b_hn, const R *w_hh, R *h,     \
                R *y))                                                                          \
    X(stack_inf, (int64_t cell, int relu, int64_t L, int64_t T, int64_t B, int64_t H,           \
                  int64_t I0, const R *x, const R *const *w, R *h, R *c, R *y, R *work))   \
    X(grads, (int64_t M, int64_t N, int64_t I, int64_t H, const R *dA, const R *dHH,            \
              const R *x, const R *h, const R *w_ih, R *dw_ih, R *dw_hh, R *db_a, R *db_hh,     \
              R *dx))                                                                         \
    X(linear_fwd, (int64_t M, int64_t N, int64_t K, const R *x, const R *w, const R *b, R *y))

#define RK_VARIANTS(X, R)                                                                        \
    X(lstmv_fwd, (int64_t T, int64_t B, int64_t H, int64_t P, const int64_t *lens, int64_t I,   \
                  const R *x, const R *w_ih, R *gates, const R *bias, const R *w_hh,             \
                  const R *w_hr, const R *ln, R *h, R *c, R *c_new, R *k, R *n_hh, R *s_hh,      \
                  R *n_c, R *s_c, R *y, R *work))                                                \
    X(lstmv_bwd, (int64_t T, int64_t B, int64_t H, int64_t P, const int64_t *lens,              \
                  const R *gates, const R *c, const R *k, const R *ln, const R *n_hh,            \
                  const R *s_hh, const R *n_c, const R *s_c, const R *w_hh, const R *w_hr,       \
                  const R *d_out, R *dh, R *dc, R *dz, R *dv, R *dchat, R *dhn, R *dh_all,       \
                  R *work))                                                                      \
    X(lstmv_inf, (int64_t T, int64_t B, int64_t H, int64_t P, const int64_t *lens, int64_t I,   \
                  const R *x, const R *w_ih, R *gates, const R *bias, const R *w_hh,             \
                  const R *w_hr, const R *ln, R *h, R *c, R *y, R *work))                        \
    X(gruln_fwd, (int64_t T, int64_t B, int64_t H, const int64_t *lens, R *a, const R *ln,      \
                  const R *w_hh, R *h, R *hn, R *n_hh, R *s_hh, R *y))                           \
    X(gruln_bwd, (int64_t T, int64_t B, int64_t H, const int64_t *lens, const R *gates,         \
                  const R *hn, const R *h, const R *n_hh, const R *s_hh, const R *ln,            \
                  const R *w_hh, const R *d_out, R *dh, R *da, R *du, R *dv, R *dh_all))          \
    X(gruln_inf, (int64_t T, int64_t B, int64_t H, const int64_t *lens, R *a, const R *ln,      \
                  const R *w_hh, R *h, R *y, R *work))                                           \
    X(indrnn_fwd, (int64_t T, int64_t B, int64_t H, const int64_t *lens, int relu, R *a,        \
                   const R *u, R *h, R *y))                                                      \
    X(indrnn_bwd, (int64_t T, int64_t B, int64_t H, const int64_t *lens, int relu, const R *h,  \
                   const R *u, const R *d_out, R *dh, R *da, R *du, R *dh_all))                  \
    X(indrnn_inf, (int64_t T, int64_t B, int64_t H, const int64_t *lens, int relu, const R *a,  \
                   const R *u, R *h, R *y))

#define RK_FIELD(name, params) int(*name) params;
typedef struct { RK_KERNELS(RK_FIELD, float) } rk_kernels_f32;
typedef struct { RK_KERNELS(RK_FIELD, double) } rk_kernels_f64;
typedef struct { RK_VARIANTS(RK_FIELD, float) } rk_variants_f32;
typedef struct { RK_VARIANTS(RK_FIELD, double) } rk_variants_f64;
#undef RK_FIELD

/* The variants' loops of one build (_variants.c), both precisions. */
typedef struct {
    rk_variants_f32 f32;
    rk_variants_f64 f64;
} rk_variant_table;

/* Every loop of one build: its instruction set's name, both precisions of the
 * plain loops and the variants' table of the same build. */
typedef struct {
    const char *isa;
    rk_kernels_f32 f32;
    rk_kernels_f64 f64;
    const rk_variant_table *variants;
} rk_table;

/* The builds, one per instruction set, each from its own compilation of
 * _kernels.c and _variants.c (RK_ISA names it); the module links those that
 * compiled (RK_HAVE_<ISA>) and picks the best the CPU runs. */
extern const rk_table rk_table_baseline;
extern const rk_table rk_table_avx2;
extern const rk_table rk_table_avx512;
extern const rk_variant_table rk_variants_baseline;
extern const rk_variant_table rk_variants_avx2;
extern const rk_variant_table rk_variants_avx512;

/* Shared by every build, defined in _fastrnn.c: set in a child made by fork()
 * (OpenMP's threads did not survive it: loops there run on one thread), and
 * the products per step each thread needs. */
extern int rk_serial;
extern int64_t rk_flops_per_thread;

/* The int8 inference loops (_quant.c, which documents them), compiled per
 * instruction set like _kernels.c; the module runs the table of the set it
 * chose (rk_quant_select) and adds their functions (rk_quant_init). */
#define RK_QALIGN 8              /* the int8 weights' columns are padded to a multiple of this */

typedef struct {                 /* one layer: int8 weights in panels, scales, biases */
    const int8_t *q_ih;
    const float *s_ih, *b_ih;
    const int8_t *q_hh;
    const float *s_hh, *b_hh;
} rk_qlayer;

typedef struct {
    const char *isa;
    int (*qmatvec)(int64_t M, int64_t N, int64_t K, const float *x, const int8_t *Q,
                   const float *sw, const float *bias, float *y);
    int (*qstack_inf)(int64_t cell, int relu, int64_t L, int64_t T, int64_t B, int64_t H,
                      int64_t I0, const int64_t *lens, const float *x, const rk_qlayer *w,
                      float *h, float *c, float *y);
} rk_qtable;

extern const rk_qtable rk_qtable_baseline;
extern const rk_qtable rk_qtable_avx2;
extern const rk_qtable rk_qtable_avx512;

struct _object;
int rk_quant_init(struct _object *module, const char *isa);
void rk_quant_select(const char *isa);

/* The scan of minGRU and minLSTM (_minscan.c, which documents the arguments),
 * compiled per instruction set like _kernels.c, in a table of its own; the
 * module runs the one of the set it chose.  min_fwd/min_bwd take the
 * pre-activations k; min_fwd_x/min_bwd_x compute them from x inside the scan
 * and return the input-weight gradients themselves (small inputs). */
#define RK_MIN_KERNELS(X, R)                                                                     \
    X(min_fwd, (int64_t T, int64_t B, int64_t H, const int64_t *lens, int lstm, const R *k,     \
                R *h, R *y))                                                                    \
    X(min_bwd, (int64_t T, int64_t B, int64_t H, const int64_t *lens, int lstm, const R *k,     \
                const R *h, const R *d_out, R *dh, R *dk, R *dh_all))                           \
    X(min_fwd_x, (int64_t T, int64_t B, int64_t H, int64_t I, const int64_t *lens, int lstm,    \
                  const R *x, const R *wt, R *h, R *y))                                         \
    X(min_bwd_x, (int64_t T, int64_t B, int64_t H, int64_t I, const int64_t *lens, int lstm,    \
                  const R *x, const R *wt, const R *h, const R *d_out, R *dh, R *dwt, R *dx,    \
                  R *dh_all))

#define RK_MIN_FIELD(name, params) int(*name) params;
typedef struct {
    struct { RK_MIN_KERNELS(RK_MIN_FIELD, float) } f32;
    struct { RK_MIN_KERNELS(RK_MIN_FIELD, double) } f64;
} rk_min_table;
#undef RK_MIN_FIELD

extern const rk_min_table rk_min_table_baseline;
extern const rk_min_table rk_min_table_avx2;
extern const rk_min_table rk_min_table_avx512;

#endif
