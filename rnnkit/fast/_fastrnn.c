/*
 * rnnkit.fast._fastrnn: the C time loops (_kernels.c, _variants.c; the min cells'
 * scan, _minscan.c) as a CPython extension.
 *
 * Each loop of _fastrnn.h is a function of this module that takes NumPy arrays
 * (any C-contiguous buffer of float32 or float64, all of one type; None for a
 * NULL pointer) and integers in the order of its C parameters, and returns
 * None (MemoryError when the loop could not allocate its workspace).  The
 * arrays' shapes are the caller's to get right: rnnkit.fast.{rnn,lstm,gru}
 * check them before calling.  The GIL is released while a loop runs.
 *
 * One build serves every CPU of its architecture: _kernels.c and _variants.c
 * are compiled once per instruction set (setup.py), and the best table of loops the CPU runs is
 * chosen when the module loads (set_isa changes it, for the tests).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>
#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#define RK_HAVE_PTHREAD_ATFORK 1
#endif
#ifdef __linux__
#include <sys/syscall.h>
#include <unistd.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#include "_fastrnn.h"

int rk_serial = 0;
int64_t rk_flops_per_thread = RK_FLOPS_PER_THREAD;

/* ------------------------------------------------------------ instruction sets -- */

typedef struct {
    const rk_table *table;
    int (*runs)(void);          /* whether this CPU (and its OS) runs the set */
} rk_build;

static int rk_always(void) { return 1; }

#if defined(__x86_64__) || defined(_M_X64)
static int rk_runs_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

static int rk_runs_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
           rk_runs_avx2();
}
#endif

/* Best first. */
static const rk_build rk_builds[] = {
#ifdef RK_HAVE_AVX512
    {&rk_table_avx512, rk_runs_avx512},
#endif
#ifdef RK_HAVE_AVX2
    {&rk_table_avx2, rk_runs_avx2},
#endif
    {&rk_table_baseline, rk_always},
};
#define RK_NBUILDS ((int)(sizeof rk_builds / sizeof rk_builds[0]))

static const rk_table *rk_kernels = &rk_table_baseline;

/* ----------------------------------------------------------------- arguments -- */

#define RK_MAXARGS 32
#define RK_MAXPTRS 256           /* stack_inf: 4 weights per layer, up to 64 layers */

typedef struct {
    Py_buffer views[RK_MAXARGS + RK_MAXPTRS];
    int nviews;
    int64_t i[RK_MAXARGS];       /* 'i' arguments */
    void *p[RK_MAXARGS];         /* pointer arguments (NULL for None) */
    const void *ptrs[RK_MAXPTRS]; /* 'P': the pointers of a sequence of arrays */
    int itemsize;                /* of the real arrays: 4 or 8 (0 before the first) */
} rk_args;

static void rk_release(rk_args *a)
{
    for (int k = 0; k < a->nviews; k++) PyBuffer_Release(&a->views[k]);
    a->nviews = 0;
}

/* The data of `obj` (None -> NULL) as a C-contiguous buffer: real (`real`, of
 * the call's one type) or int64 lengths; writable when `write`. */
static int rk_buffer(rk_args *a, PyObject *obj, int real, int write, const char *fn, int pos,
                     void **out)
{
    if (obj == Py_None) {
        *out = NULL;
        return 0;
    }
    Py_buffer *v = &a->views[a->nviews];
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (write ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, v, flags) < 0) {
        PyErr_Format(PyExc_TypeError, "_fastrnn.%s: argument %d must be a C-contiguous%s array",
                     fn, pos, write ? " writable" : "");
        return -1;
    }
    a->nviews++;
    const char *f = v->format ? v->format : "B";
    if (*f == '<' || *f == '=' || *f == '@') f++;
    int ok;
    if (real) {
        ok = f[1] == 0 && ((f[0] == 'f' && v->itemsize == 4) || (f[0] == 'd' && v->itemsize == 8));
        if (ok && a->itemsize && a->itemsize != v->itemsize) ok = 0;
        if (ok) a->itemsize = (int)v->itemsize;
    } else {
        ok = f[1] == 0 && (f[0] == 'q' || f[0] == 'l') && v->itemsize == 8;
    }
    if (!ok) {
        PyErr_Format(PyExc_TypeError, "_fastrnn.%s: argument %d must be %s", fn, pos,
                     real ? "float32 or float64, of the same type as the others" : "int64");
        return -1;
    }
    *out = v->buf;
    return 0;
}

/* Parse the arguments by `fmt`, one letter each: i an integer, l int64 lengths
 * or None, r a real array read, w a real array written (either may be None), P
 * a sequence of real arrays or None (stack_inf's weights). */
static int rk_parse(rk_args *a, const char *fn, const char *fmt, PyObject *const *args,
                    Py_ssize_t nargs)
{
    const Py_ssize_t n = (Py_ssize_t)strlen(fmt);
    a->nviews = 0;
    a->itemsize = 0;
    if (nargs != n) {
        PyErr_Format(PyExc_TypeError, "_fastrnn.%s takes %zd arguments, got %zd", fn, n, nargs);
        return -1;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *obj = args[k];
        int rc = 0;
        a->p[k] = NULL;
        switch (fmt[k]) {
        case 'i':
            a->i[k] = PyLong_AsLongLong(obj);
            rc = a->i[k] == -1 && PyErr_Occurred() ? -1 : 0;
            break;
        case 'l': rc = rk_buffer(a, obj, 0, 0, fn, (int)k, &a->p[k]); break;
        case 'r': rc = rk_buffer(a, obj, 1, 0, fn, (int)k, &a->p[k]); break;
        case 'w': rc = rk_buffer(a, obj, 1, 1, fn, (int)k, &a->p[k]); break;
        case 'P': {
            PyObject *seq = PySequence_Fast(obj, "a sequence of arrays");
            if (!seq) return rk_release(a), -1;
            const Py_ssize_t m = PySequence_Fast_GET_SIZE(seq);
            if (m > RK_MAXPTRS) {
                Py_DECREF(seq);
                PyErr_Format(PyExc_ValueError, "_fastrnn.%s: at most %d arrays in argument %d",
                             fn, RK_MAXPTRS, (int)k);
                return rk_release(a), -1;
            }
            for (Py_ssize_t j = 0; j < m && rc == 0; j++) {
                void *ptr = NULL;
                rc = rk_buffer(a, PySequence_Fast_GET_ITEM(seq, j), 1, 0, fn, (int)k, &ptr);
                a->ptrs[j] = ptr;
            }
            Py_DECREF(seq);
            a->p[k] = (void *)a->ptrs;
            break;
        }
        }
        if (rc < 0) {
            rk_release(a);
            return -1;
        }
    }
    return 0;
}

static PyObject *rk_done(rk_args *a, int rc, const char *fn)
{
    rk_release(a);
    if (rc != 0) return PyErr_Format(PyExc_MemoryError, "_fastrnn.%s: out of memory", fn);
    Py_RETURN_NONE;
}

/* A module function for loop `name`: parse by `fmt`, call the chosen build's
 * loop of the arrays' precision with the arguments listed (I(k) the k-th
 * integer, P(k) the k-th pointer; the compiler checks them against
 * _fastrnn.h), without the GIL. */
#define I(k) a.i[k]
#define P(k) a.p[k]
#define RK_WRAP_IN(table, name, fmt, ...)                                                        \
    static PyObject *py_##name(PyObject *self, PyObject *const *args, Py_ssize_t nargs)          \
    {                                                                                            \
        rk_args a;                                                                               \
        (void)self;                                                                              \
        if (rk_parse(&a, #name, fmt, args, nargs) < 0) return NULL;                              \
        const rk_table *t = rk_kernels;                                                          \
        int rc;                                                                                  \
        Py_BEGIN_ALLOW_THREADS                                                                   \
        rc = a.itemsize == 8 ? table.f64.name(__VA_ARGS__) : table.f32.name(__VA_ARGS__);        \
        Py_END_ALLOW_THREADS                                                                     \
        return rk_done(&a, rc, #name);                                                           \
    }
#define RK_WRAP(name, fmt, ...) RK_WRAP_IN((*t), name, fmt, __VA_ARGS__)      /* _kernels.c */
#define RK_WRAPV(name, fmt, ...) RK_WRAP_IN((*t->variants), name, fmt, __VA_ARGS__)  /* _variants.c */

RK_WRAP(rnn_fwd, "iiiliirrwrrww", I(0), I(1), I(2), P(3), (int)I(4), I(5), P(6), P(7), P(8),
        P(9), P(10), P(11), P(12))
RK_WRAP(rnn_bwd, "iiilirrwwww", I(0), I(1), I(2), P(3), (int)I(4), P(5), P(6), P(7), P(8),
        P(9), P(10))
RK_WRAP(lstm_fwd, "iiilirrwrrwwww", I(0), I(1), I(2), P(3), I(4), P(5), P(6), P(7), P(8), P(9),
        P(10), P(11), P(12), P(13))
RK_WRAP(lstm_bwd, "iiilrrrrrwwww", I(0), I(1), I(2), P(3), P(4), P(5), P(6), P(7), P(8), P(9),
        P(10), P(11), P(12))
RK_WRAP(gru_fwd, "iiilirrwrwrrwww", I(0), I(1), I(2), P(3), I(4), P(5), P(6), P(7), P(8), P(9),
        P(10), P(11), P(12), P(13), P(14))
RK_WRAP(gru_bwd, "iiilrrrrrwwww", I(0), I(1), I(2), P(3), P(4), P(5), P(6), P(7), P(8), P(9),
        P(10), P(11), P(12))
RK_WRAP(rnn_inf, "iiiliirrwrrww", I(0), I(1), I(2), P(3), (int)I(4), I(5), P(6), P(7), P(8),
        P(9), P(10), P(11), P(12))
RK_WRAP(lstm_inf, "iiilirrwrrwww", I(0), I(1), I(2), P(3), I(4), P(5), P(6), P(7), P(8), P(9),
        P(10), P(11), P(12))
RK_WRAP(gru_inf, "iiilirrwrwrrww", I(0), I(1), I(2), P(3), I(4), P(5), P(6), P(7), P(8), P(9),
        P(10), P(11), P(12), P(13))
RK_WRAP(stack_inf, "iiiiiiirPwwww", I(0), (int)I(1), I(2), I(3), I(4), I(5), I(6), P(7), P(8),
        P(9), P(10), P(11), P(12))
RK_WRAP(grads, "iiiirrrrrwwwww", I(0), I(1), I(2), I(3), P(4), P(5), P(6), P(7), P(8), P(9),
        P(10), P(11), P(12), P(13))
RK_WRAP(linear_fwd, "iiirrrw", I(0), I(1), I(2), P(3), P(4), P(5), P(6))

RK_WRAPV(lstmv_fwd, "iiiilirrwrrrrwwwwwwwwww", I(0), I(1), I(2), I(3), P(4), I(5), P(6), P(7),
        P(8), P(9), P(10), P(11), P(12), P(13), P(14), P(15), P(16), P(17), P(18), P(19), P(20),
        P(21), P(22))
RK_WRAPV(lstmv_bwd, "iiiilrrrrrrrrrrrwwwwwwww", I(0), I(1), I(2), I(3), P(4), P(5), P(6), P(7),
        P(8), P(9), P(10), P(11), P(12), P(13), P(14), P(15), P(16), P(17), P(18), P(19), P(20),
        P(21), P(22), P(23))
RK_WRAPV(lstmv_inf, "iiiilirrwrrrrwwww", I(0), I(1), I(2), I(3), P(4), I(5), P(6), P(7), P(8),
        P(9), P(10), P(11), P(12), P(13), P(14), P(15), P(16))
RK_WRAPV(gruln_fwd, "iiilwrrwwwww", I(0), I(1), I(2), P(3), P(4), P(5), P(6), P(7), P(8), P(9),
        P(10), P(11))
RK_WRAPV(gruln_bwd, "iiilrrrrrrrrwwwww", I(0), I(1), I(2), P(3), P(4), P(5), P(6), P(7), P(8),
        P(9), P(10), P(11), P(12), P(13), P(14), P(15), P(16))
RK_WRAPV(gruln_inf, "iiilwrrwww", I(0), I(1), I(2), P(3), P(4), P(5), P(6), P(7), P(8), P(9))
RK_WRAPV(indrnn_fwd, "iiiliwrww", I(0), I(1), I(2), P(3), (int)I(4), P(5), P(6), P(7), P(8))
RK_WRAPV(indrnn_bwd, "iiilirrrwwww", I(0), I(1), I(2), P(3), (int)I(4), P(5), P(6), P(7), P(8),
        P(9), P(10), P(11))
RK_WRAPV(indrnn_inf, "iiilirrww", I(0), I(1), I(2), P(3), (int)I(4), P(5), P(6), P(7), P(8))

/* The min cells' scan (_minscan.c): the table built for the same set as the loops that run. */
static const rk_min_table *rk_min_kernels(void)
{
    const char *isa = rk_kernels->isa;
    (void)isa;
#ifdef RK_HAVE_AVX512
    if (strcmp(isa, "avx512") == 0) return &rk_min_table_avx512;
#endif
#ifdef RK_HAVE_AVX2
    if (strcmp(isa, "avx2") == 0) return &rk_min_table_avx2;
#endif
    return &rk_min_table_baseline;
}

#define RK_MIN_WRAP(name, fmt, ...)                                                              \
    static PyObject *py_##name(PyObject *self, PyObject *const *args, Py_ssize_t nargs)          \
    {                                                                                            \
        rk_args a;                                                                               \
        (void)self;                                                                              \
        if (rk_parse(&a, #name, fmt, args, nargs) < 0) return NULL;                              \
        const rk_min_table *t = rk_min_kernels();                                                \
        int rc;                                                                                  \
        Py_BEGIN_ALLOW_THREADS                                                                   \
        rc = a.itemsize == 8 ? t->f64.name(__VA_ARGS__) : t->f32.name(__VA_ARGS__);              \
        Py_END_ALLOW_THREADS                                                                     \
        return rk_done(&a, rc, #name);                                                           \
    }

RK_MIN_WRAP(min_fwd, "iiilirww", I(0), I(1), I(2), P(3), (int)I(4), P(5), P(6), P(7))
RK_MIN_WRAP(min_bwd, "iiilirrrwww", I(0), I(1), I(2), P(3), (int)I(4), P(5), P(6), P(7), P(8),
            P(9), P(10))
RK_MIN_WRAP(min_fwd_x, "iiiilirrww", I(0), I(1), I(2), I(3), P(4), (int)I(5), P(6), P(7), P(8),
            P(9))
RK_MIN_WRAP(min_bwd_x, "iiiilirrrrwwww", I(0), I(1), I(2), I(3), P(4), (int)I(5), P(6), P(7), P(8),
            P(9), P(10), P(11), P(12), P(13))

/* ------------------------------------------------------------------- settings -- */

static int rk_threads_now(void)
{
#ifdef _OPENMP
    return rk_serial ? 1 : omp_get_max_threads();
#else
    return 1;
#endif
}

static PyObject *py_max_threads(PyObject *self, PyObject *unused)
{
    (void)self, (void)unused;
    return PyLong_FromLong(rk_threads_now());
}

/* The kernel's ids (Linux's gettid) of the threads a loop runs on now: the calling
 * thread and OpenMP's workers, which stay the same from loop to loop while the
 * thread count does.  Empty where they cannot be known (not Linux). */
static PyObject *py_loop_thread_ids(PyObject *self, PyObject *unused)
{
    (void)self, (void)unused;
#ifdef __linux__
    enum { MAX_IDS = 1024 };
    long ids[MAX_IDS];
    int n = rk_threads_now();
    if (n > MAX_IDS) n = MAX_IDS;
    for (int i = 0; i < n; i++) ids[i] = -1;
    Py_BEGIN_ALLOW_THREADS
#pragma omp parallel num_threads(n) if (n > 1)
    {
#ifdef _OPENMP
        const int i = omp_get_thread_num();
#else
        const int i = 0;
#endif
        if (i < MAX_IDS) ids[i] = (long)syscall(SYS_gettid);
    }
    Py_END_ALLOW_THREADS
    PyObject *out = PyTuple_New(n);
    if (!out) return NULL;
    for (int i = 0; i < n; i++) {
        PyObject *v = PyLong_FromLong(ids[i]);
        if (!v) {
            Py_DECREF(out);
            return NULL;
        }
        PyTuple_SET_ITEM(out, i, v);
    }
    return out;
#else
    return PyTuple_New(0);
#endif
}

static PyObject *py_set_max_threads(PyObject *self, PyObject *arg)
{
    (void)self;
    const long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) return NULL;
    const int old = rk_threads_now();
#ifdef _OPENMP
    if (n > 0 && !rk_serial) omp_set_num_threads((int)n);
#endif
    return PyLong_FromLong(old);
}

static PyObject *py_set_flops_per_thread(PyObject *self, PyObject *arg)
{
    (void)self;
    const long long n = PyLong_AsLongLong(arg);
    if (n == -1 && PyErr_Occurred()) return NULL;
    const int64_t old = rk_flops_per_thread;
    rk_flops_per_thread = n;
    return PyLong_FromLongLong(old);
}

/* all_finite(a): whether no element of the C-contiguous float32 or float64 array a
 * is NaN or +-inf (an exponent of all ones), read as integers so the loop
 * vectorises; None for anything else (the caller checks it another way).  One
 * call costs what a step's argument check can afford: a third of NumPy's
 * dot-product test on a generation step's (1, 1, 64) input. */
static PyObject *py_all_finite(PyObject *self, PyObject *arg)
{
    (void)self;
    Py_buffer b;
    if (PyObject_GetBuffer(arg, &b, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    const char *f = b.format ? b.format : "B";
    if (*f == '<' || *f == '=' || *f == '@') f++;
    int bad = 0, known = 1;
    if (f[0] == 'f' && f[1] == 0 && b.itemsize == 4) {
        const uint32_t *u = b.buf;
        const Py_ssize_t n = b.len / 4;
        uint32_t any = 0;
        for (Py_ssize_t k = 0; k < n; k++) any |= (uint32_t)((u[k] & 0x7f800000u) == 0x7f800000u);
        bad = any != 0;
    } else if (f[0] == 'd' && f[1] == 0 && b.itemsize == 8) {
        const uint64_t *u = b.buf;
        const Py_ssize_t n = b.len / 8;
        uint64_t any = 0;
        for (Py_ssize_t k = 0; k < n; k++)
            any |= (uint64_t)((u[k] & 0x7ff0000000000000ull) == 0x7ff0000000000000ull);
        bad = any != 0;
    } else {
        known = 0;
    }
    PyBuffer_Release(&b);
    if (!known) Py_RETURN_NONE;
    return PyBool_FromLong(!bad);
}

/* add_scaled_rows(out, out_rows, src, src_rows, scale): for j = 0 … m−1,
 *     out[out_rows[j], :] += scale[j] · src[src_rows[j], :]
 * with out (n, K) and src (p, K) C-contiguous float64, the indices int64 (m,) and
 * scale float64 (m,): a sparse matrix (in coordinates) times a dense one, X·W with
 * out_rows = X's rows and src_rows = its columns, or Xᵀ·G with the two swapped.  NumPy
 * has no such product; np.add.at does it about a hundred times slower.  Raises
 * ValueError for a wrong type, shape or an index out of range (nothing is added then). */
/* A C-contiguous buffer of 8-byte items, float64 (fmt "d") or int64 ("q"), with ndim
 * dimensions; else a ValueError naming the function fn and the argument. */
static int rk_typed_buffer(PyObject *o, Py_buffer *b, const char *fmt, int ndim, int writable, const char *name,
                           const char *fn)
{
    if (PyObject_GetBuffer(o, b, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0)) < 0)
        return -1;
    const char *f = b->format ? b->format : "B";
    if (*f == '<' || *f == '=' || *f == '@') f++;
    /* int64 reads as 'l' where a long has 64 bits and as 'q' elsewhere */
    const int same = strcmp(f, fmt) == 0 || (fmt[0] == 'q' && strcmp(f, "l") == 0);
    if (b->ndim != ndim || b->itemsize != 8 || !same) {
        PyBuffer_Release(b);
        PyErr_Format(PyExc_ValueError, "%s: %s must be a C-contiguous %dD %s array", fn, name, ndim,
                     fmt[0] == 'd' ? "float64" : "int64");
        return -1;
    }
    return 0;
}

static int rk_rows_buffer(PyObject *o, Py_buffer *b, const char *fmt, int ndim, int writable, const char *name)
{
    return rk_typed_buffer(o, b, fmt, ndim, writable, name, "add_scaled_rows");
}

static PyObject *py_add_scaled_rows(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 5) return PyErr_Format(PyExc_TypeError, "add_scaled_rows takes 5 arguments, got %zd", nargs);
    Py_buffer out, orow, src, srow, sc;
    if (rk_rows_buffer(args[0], &out, "d", 2, 1, "out") < 0) return NULL;
    if (rk_rows_buffer(args[1], &orow, "q", 1, 0, "out_rows") < 0) goto fail_out;
    if (rk_rows_buffer(args[2], &src, "d", 2, 0, "src") < 0) goto fail_orow;
    if (rk_rows_buffer(args[3], &srow, "q", 1, 0, "src_rows") < 0) goto fail_src;
    if (rk_rows_buffer(args[4], &sc, "d", 1, 0, "scale") < 0) goto fail_srow;
    const Py_ssize_t n = out.shape[0], K = out.shape[1], p = src.shape[0], m = orow.shape[0];
    const int64_t *oi = orow.buf, *si = srow.buf;
    const double *S = src.buf, *a = sc.buf;
    double *O = out.buf;
    if (src.shape[1] != K || srow.shape[0] != m || sc.shape[0] != m) {
        PyErr_SetString(PyExc_ValueError, "add_scaled_rows: out and src need as many columns, and the "
                                          "indices and scale one length");
        goto fail;
    }
    for (Py_ssize_t j = 0; j < m; j++) {
        if (oi[j] < 0 || oi[j] >= n || si[j] < 0 || si[j] >= p) {
            PyErr_Format(PyExc_ValueError, "add_scaled_rows: index pair %zd (%lld, %lld) is out of range",
                         j, (long long)oi[j], (long long)si[j]);
            goto fail;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t j = 0; j < m; j++) {
        double *restrict o = O + oi[j] * K;
        const double *restrict s = S + si[j] * K;
        const double w = a[j];
        for (Py_ssize_t k = 0; k < K; k++) o[k] += w * s[k];
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&sc); PyBuffer_Release(&srow); PyBuffer_Release(&src); PyBuffer_Release(&orow);
    PyBuffer_Release(&out);
    Py_RETURN_NONE;
fail:
    PyBuffer_Release(&sc);
fail_srow:
    PyBuffer_Release(&srow);
fail_src:
    PyBuffer_Release(&src);
fail_orow:
    PyBuffer_Release(&orow);
fail_out:
    PyBuffer_Release(&out);
    return NULL;
}

/* random_conv_features(x, offsets, kernels, bias, weights, channels, out): the ROCKET
 * features (Dempster et al. 2020) of n series concatenated in x (N, F) float64, series s
 * being rows offsets[s] … offsets[s+1]−1.  Kernel k (a row of the int64 (nk, 6) array
 * kernels: length L, dilation d, padding p, channel count C, offset of its C·L weights in
 * weights, offset of its C channel indices in channels) gives at output position
 * i = 0 … n_out − 1, n_out = max(1, T + 2p − (L − 1)·d),
 *     o_i = bias[k] + Σ_{c<C} Σ_{j<L} w[c·L + j] · x[i − p + j·d, channel c]
 * (values outside the series read as 0), and five features in out[s, 5k … 5k+4]: the
 * proportion of positive o_i (PPV), max_i o_i, the mean of the positive o_i (MPV, 0 if
 * none), the mean place i/(n_out − 1) of the positive ones (MIPV, −1 if none) and the
 * longest run of positive o_i over n_out (LSPV) — ROCKET's two and MultiRocket's three
 * (Tan et al. 2022).  Raises ValueError for a wrong type or shape or a parameter out of
 * range (nothing is written then). */
static PyObject *py_random_conv_features(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 7) return PyErr_Format(PyExc_TypeError, "random_conv_features takes 7 arguments, got %zd", nargs);
    static const char *names[7] = {"x", "offsets", "kernels", "bias", "weights", "channels", "out"};
    static const char *fmts[7] = {"d", "q", "q", "d", "d", "q", "d"};
    static const int ndims[7] = {2, 1, 2, 1, 1, 1, 2};
    Py_buffer b[7];
    int got = 0;
    PyObject *result = NULL;
    for (; got < 7; got++)
        if (rk_typed_buffer(args[got], &b[got], fmts[got], ndims[got], got == 6, names[got],
                            "random_conv_features") < 0) goto done;
    const Py_ssize_t N = b[0].shape[0], F = b[0].shape[1], n = b[1].shape[0] - 1, nk = b[2].shape[0];
    const Py_ssize_t nw = b[4].shape[0], nc = b[5].shape[0];
    const double *x = b[0].buf, *bias = b[3].buf, *wts = b[4].buf;
    const int64_t *off = b[1].buf, *ker = b[2].buf, *chan = b[5].buf;
    double *out = b[6].buf;
    if (n < 0 || b[2].shape[1] != 6 || b[3].shape[0] != nk || b[6].shape[0] != n || b[6].shape[1] != 5 * nk) {
        PyErr_SetString(PyExc_ValueError, "random_conv_features: expected offsets (n+1,), kernels (nk, 6), "
                                          "bias (nk,) and out (n, 5·nk)");
        goto done;
    }
    Py_ssize_t longest = 1;
    for (Py_ssize_t s = 0; s < n; s++) {
        if (off[s] < 0 || off[s + 1] < off[s] || off[s + 1] > N) {
            PyErr_Format(PyExc_ValueError, "random_conv_features: offsets[%zd:%zd] = (%lld, %lld) is not a "
                         "range of x's %zd rows", s, s + 2, (long long)off[s], (long long)off[s + 1], N);
            goto done;
        }
        if (off[s + 1] - off[s] > longest) longest = off[s + 1] - off[s];
    }
    for (Py_ssize_t k = 0; k < nk; k++) {
        const int64_t *q = ker + 6 * k;
        int bad = q[0] < 1 || q[1] < 1 || q[2] < 0 || q[3] < 1 || q[4] < 0 || q[5] < 0 ||
                  q[4] + q[3] * q[0] > nw || q[5] + q[3] > nc;
        for (int64_t c = 0; !bad && c < q[3]; c++) bad = chan[q[5] + c] < 0 || chan[q[5] + c] >= F;
        if (bad) {
            PyErr_Format(PyExc_ValueError, "random_conv_features: kernel %zd (length %lld, dilation %lld, padding "
                         "%lld, %lld channels) does not fit the weights, channels or x", k, (long long)q[0],
                         (long long)q[1], (long long)q[2], (long long)q[3]);
            goto done;
        }
    }
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    double *o = NULL;
    /* the output buffer: the most positions any kernel gives any series */
    Py_ssize_t most = 1;
    for (Py_ssize_t k = 0; k < nk; k++) {
        const int64_t *q = ker + 6 * k;
        const Py_ssize_t m = longest + 2 * q[2] - (q[0] - 1) * q[1];
        if (m > most) most = m;
    }
    o = malloc((size_t)most * sizeof(double));
    if (!o) failed = 1;
    for (Py_ssize_t s = 0; s < n && !failed; s++) {
        const Py_ssize_t T = off[s + 1] - off[s];
        const double *xs = x + off[s] * F;
        for (Py_ssize_t k = 0; k < nk; k++) {
            const int64_t *q = ker + 6 * k;
            const Py_ssize_t L = q[0], d = q[1], p = q[2], C = q[3];
            const double *w = wts + q[4];
            const int64_t *ch = chan + q[5];
            Py_ssize_t m = T + 2 * p - (L - 1) * d;
            if (m < 1) m = 1;
            for (Py_ssize_t i = 0; i < m; i++) o[i] = bias[k];
            for (Py_ssize_t c = 0; c < C; c++) {
                const double *xc = xs + ch[c];
                for (Py_ssize_t j = 0; j < L; j++) {
                    const Py_ssize_t shift = j * d - p;          /* o_i reads x[i + shift] */
                    Py_ssize_t lo = shift < 0 ? -shift : 0, hi = T - shift;
                    if (hi > m) hi = m;
                    const double wj = w[c * L + j];
                    if (F == 1) {
                        const double *restrict xv = xc + (lo + shift);      /* x[lo + shift] … */
                        double *restrict ov = o + lo;
                        for (Py_ssize_t i = 0; i < hi - lo; i++) ov[i] += wj * xv[i];
                    } else {
                        for (Py_ssize_t i = lo; i < hi; i++) o[i] += wj * xc[(i + shift) * F];
                    }
                }
            }
            Py_ssize_t pos = 0, run = 0, longest_run = 0;
            double mx = o[0], sum = 0.0, places = 0.0;
            for (Py_ssize_t i = 0; i < m; i++) {
                const int up = o[i] > 0.0;
                pos += up;
                sum += up ? o[i] : 0.0;
                places += up ? (double)i : 0.0;
                run = up ? run + 1 : 0;
                longest_run = run > longest_run ? run : longest_run;
                mx = o[i] > mx ? o[i] : mx;
            }
            double *f = out + s * 5 * nk + 5 * k;
            f[0] = (double)pos / (double)m;
            f[1] = mx;
            f[2] = pos ? sum / (double)pos : 0.0;
            f[3] = pos ? places / (double)pos / (double)(m > 1 ? m - 1 : 1) : -1.0;
            f[4] = (double)longest_run / (double)m;
        }
    }
    free(o);
    Py_END_ALLOW_THREADS
    if (failed) {
        PyErr_NoMemory();
        goto done;
    }
    result = Py_None;
    Py_INCREF(result);
done:
    while (got-- > 0) PyBuffer_Release(&b[got]);
    return result;
}

static PyObject *py_isa(PyObject *self, PyObject *unused)
{
    (void)self, (void)unused;
    return PyUnicode_FromString(rk_kernels->isa);
}

static PyObject *py_set_isa(PyObject *self, PyObject *arg)
{
    (void)self;
    const char *name = PyUnicode_AsUTF8(arg);
    if (!name) return NULL;
    for (int k = 0; k < RK_NBUILDS; k++) {
        if (strcmp(rk_builds[k].table->isa, name) == 0 && rk_builds[k].runs()) {
            const char *old = rk_kernels->isa;
            rk_kernels = rk_builds[k].table;
            rk_quant_select(name);
            return PyUnicode_FromString(old);
        }
    }
    return PyErr_Format(PyExc_ValueError, "set_isa: %R is not one of this build's sets this CPU runs",
                        arg);
}

#ifdef RK_HAVE_PTHREAD_ATFORK
static void rk_after_fork_in_child(void) { rk_serial = 1; }
#endif

#define RK_LOOP(name) {#name, (PyCFunction)(void (*)(void))py_##name, METH_FASTCALL, NULL},
static PyMethodDef rk_methods[] = {
#define RK_METHOD(name, params) RK_LOOP(name)
    RK_KERNELS(RK_METHOD, float)
    RK_VARIANTS(RK_METHOD, float)
    RK_MIN_KERNELS(RK_METHOD, float)
#undef RK_METHOD
    {"max_threads", py_max_threads, METH_NOARGS,
     "How many threads the loops may use now (1 without OpenMP or in a forked child)."},
    {"loop_thread_ids", py_loop_thread_ids, METH_NOARGS,
     "The kernel's ids of the threads a loop runs on now (empty where not known)."},
    {"set_max_threads", py_set_max_threads, METH_O,
     "Let later calls from this thread use up to n threads; return the old limit."},
    {"set_flops_per_thread", py_set_flops_per_thread, METH_O,
     "Set the products (FLOPs per step) each thread needs (0: always split); return the old."},
    {"isa", py_isa, METH_NOARGS, "The instruction set of the loops that run."},
    {"all_finite", py_all_finite, METH_O,
     "Whether a C-contiguous float32/float64 array holds no NaN or inf (None: another array)."},
    {"add_scaled_rows", (PyCFunction)(void (*)(void))py_add_scaled_rows, METH_FASTCALL,
     "out[out_rows[j]] += scale[j] * src[src_rows[j]] for every j (float64 rows, int64 indices)."},
    {"random_conv_features", (PyCFunction)(void (*)(void))py_random_conv_features, METH_FASTCALL,
     "ROCKET features (PPV and max of every random dilated kernel) of series concatenated in rows."},
    {"set_isa", py_set_isa, METH_O,
     "Run the loops built for another instruction set (one of ISAS); return the old one."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef rk_module = {
    PyModuleDef_HEAD_INIT, "_fastrnn",
    "The C time loops of rnnkit.fast (see rnnkit/fast/_fastrnn.c).", -1, rk_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fastrnn(void)
{
    PyObject *m = PyModule_Create(&rk_module);
    if (!m) return NULL;
    PyObject *isas = PyTuple_New(0);
    for (int k = RK_NBUILDS - 1; k >= 0 && isas; k--) {      /* chosen: the best that runs */
        if (!rk_builds[k].runs()) continue;
        rk_kernels = rk_builds[k].table;
        PyObject *name = PyUnicode_FromString(rk_kernels->isa);
        if (!name || _PyTuple_Resize(&isas, PyTuple_GET_SIZE(isas) + 1) < 0) {
            Py_XDECREF(name);
            Py_CLEAR(isas);
            break;
        }
        PyTuple_SET_ITEM(isas, PyTuple_GET_SIZE(isas) - 1, name);
    }
#ifdef _OPENMP
    const long openmp = _OPENMP;
#else
    const long openmp = 0;
#endif
    if (!isas || PyModule_AddObject(m, "ISAS", isas) < 0) {
        Py_XDECREF(isas);
        Py_DECREF(m);
        return NULL;
    }
    if (rk_quant_init(m, rk_kernels->isa) < 0 ||      /* the int8 loops (_quant.c) */
        PyModule_AddIntConstant(m, "ABI_VERSION", RK_ABI_VERSION) < 0 ||
        PyModule_AddIntConstant(m, "FLOPS_PER_THREAD", RK_FLOPS_PER_THREAD) < 0 ||
        PyModule_AddIntConstant(m, "OPENMP", openmp) < 0) {
        Py_DECREF(m);
        return NULL;
    }
#ifdef RK_HAVE_PTHREAD_ATFORK
    /* GNU OpenMP's threads do not survive fork(): a child that started them
     * would wait for them forever, so children run the loops on one thread */
    pthread_atfork(NULL, NULL, rk_after_fork_in_child);
#endif
    return m;
}
