/* core: errors, logging, allocation, shapes, parsing of small values, the
 * Philox RNG, BLAS wrappers.
 *
 * Two kinds of failure, one exit (src/core/error.c):
 *
 *   Errors are values. Whatever comes from outside the program (a config
 *   key, a file, data, a checkpoint, the command line, ranks that disagree)
 *   and is wrong makes the function that finds it record one message and
 *   return a non-zero gt_status; every caller passes it up with GT_TRY,
 *   which adds its file and line to the trace; only main() ends the process
 *   (gt_exit_error: the message, its source location and trace on stderr,
 *   then the exit code; under MPI the whole job ends). A caller that can
 *   recover (resume skipping a damaged checkpoint) reads gt_error_message()
 *   and calls gt_error_clear().
 *
 *       gt_status load(const char *path, thing *out) {
 *           FILE *f = fopen(path, "rb");
 *           if (!f) return GT_ERROR("cannot open %s: %s", path, strerror(errno));
 *           GT_TRY(parse(f, out));
 *           ...
 *           return GT_OK;
 *       }
 *
 *   Panics end the process where they happen, through the same exit: a
 *   broken invariant (GT_ASSERT: a bug in gentrain, never bad input), memory
 *   that cannot be allocated, and a failing MPI call (the job can no longer
 *   communicate, so there is nothing to return to). */
#ifndef GENTRAIN_CORE_H
#define GENTRAIN_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- errors ------------------------------------------------------------ */

/* The values are the program's exit codes. */
typedef enum {
    GT_OK = 0,
    GT_ERR = 1,       /* something is wrong; the message says what */
    GT_ERR_USAGE = 2, /* bad command line */
    GT_STOPPED = 75,  /* not an error: stopped on a signal after writing a checkpoint, requeue me (EX_TEMPFAIL) */
} gt_status;

/* Records an error (the message, printf-style, and where it was found) and
 * returns code. The message may use gt_error_message() of the error it
 * replaces (wrapping it); the trace then goes on from the earlier one. */
gt_status gt_error_at(const char *file, int line, gt_status code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define GT_ERROR(...) gt_error_at(__FILE__, __LINE__, GT_ERR, __VA_ARGS__)
#define GT_USAGE_ERROR(...) gt_error_at(__FILE__, __LINE__, GT_ERR_USAGE, __VA_ARGS__)
/* An error that every rank finds at the same point of a collective check (the
 * ranks disagree, the replicas diverged): only rank 0 prints it, and the
 * ranks meet before the job ends so that the message gets out. */
#define GT_ERROR_ALL(...) gt_error_collective(gt_error_at(__FILE__, __LINE__, GT_ERR, __VA_ARGS__))
gt_status gt_error_collective(gt_status code);
/* Adds a caller's location to the trace of the pending error; returns code. */
gt_status gt_error_trace(const char *file, int line, gt_status code);
#define GT_TRY(call)                                                                                         \
    do {                                                                                                     \
        gt_status st_ = (call);                                                                              \
        if (st_ != GT_OK) return gt_error_trace(__FILE__, __LINE__, st_);                                    \
    } while (0)
#define GT_ENSURE(cond, ...)                                                                                 \
    do {                                                                                                     \
        if (!(cond)) return GT_ERROR(__VA_ARGS__);                                                           \
    } while (0)
/* The pending error's message ("" if none), its location and trace ("FILE:LINE < FILE:LINE ..."). */
const char *gt_error_message(void);
const char *gt_error_where(void);
void gt_error_clear(void);
/* The one exit for errors: prints "gentrain: error: MESSAGE [TRACE]" and ends
 * the process with code (every rank under MPI, through the exit hook). */
_Noreturn void gt_exit_error(gt_status code);

/* Panics: the same one-line message format and exit, from where they happen. */
_Noreturn void gt_panic_at(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define gt_panic(...) gt_panic_at(__FILE__, __LINE__, __VA_ARGS__)
#define GT_ASSERT(cond, ...)                                                                                 \
    do {                                                                                                     \
        if (!(cond)) gt_panic_at(__FILE__, __LINE__, __VA_ARGS__);                                           \
    } while (0)

/* How the process ends (default: exit(code)); src/dist installs MPI_Abort
 * (after a barrier when the error is collective). Must not return. */
void gt_set_exit_hook(void (*hook)(int code, int collective));

/* ---- logging ------------------------------------------------------------
 * Only the process whose log rank is 0 prints info lines; warnings (and
 * errors) print on every rank, prefixed with the rank when there are several. */
void gt_set_log_rank(int rank, int size);
/* 1: info lines go to stderr instead of stdout (a command whose stdout is data, e.g. JSON). */
void gt_set_info_stderr(int on);
void gt_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void gt_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- allocation: checked (out of memory panics), 64-byte aligned, zeroed --- */

void *gt_alloc_at(const char *file, int line, size_t bytes);
#define gt_alloc(bytes) gt_alloc_at(__FILE__, __LINE__, (bytes))
#define gt_alloc_floats(n) ((float *)gt_alloc_at(__FILE__, __LINE__, (size_t)(n) * sizeof(float)))
void gt_free(void *p);
char *gt_strdup_at(const char *file, int line, const char *s);
#define gt_strdup(s) gt_strdup_at(__FILE__, __LINE__, (s))

/* Denormal floats are flushed to zero (FTZ/DAZ) in the calling thread. */
void gt_flush_denormals(void);

/* Freed memory stays with the process (glibc's mallopt: blocks up to 32 MiB
 * come from the heap, whose top is returned to the system only beyond
 * 256 MiB), unless the user set MALLOC_*_ or GLIBC_TUNABLES. Open MPI's
 * non-blocking allreduce allocates a temporary buffer the size of the message
 * for every call; with glibc's defaults two buckets in flight at once (vae:
 * 3.2 MB each) grew the heap past its trim threshold, and it was returned
 * and faulted in again at every step: 30% of the step on 2 ranks. */
void gt_keep_freed_memory(void);

/* ---- shapes ---------------------------------------------------------------- */

/* Per-example shape, NCHW without the N; a vector of n features is {n, 1, 1}. */
typedef struct {
    int c, h, w;
} gt_shape;
static inline size_t gt_shape_size(gt_shape s) { return (size_t)s.c * s.h * s.w; }
static inline int gt_shape_eq(gt_shape a, gt_shape b) { return a.c == b.c && a.h == b.h && a.w == b.w; }

/* ---- small values as text (configs, layer lines, the command line) --------- */

/* Strict: the whole string, no spaces, in range; 1 = parsed, 0 = not. */
int gt_parse_long(const char *s, long *out);
int gt_parse_double(const char *s, double *out); /* finite numbers only */
/* 1 / 0 for true|yes|on|1 / false|no|off|0 (any case), -1 otherwise. */
int gt_parse_bool(const char *s);
/* "CxHxW" -> {C,H,W}; "N" -> {N,1,1}; every dimension in 1..2^30. */
int gt_parse_shape(const char *s, gt_shape *out);

/* ---- counter-based randomness (Philox4x32-10) ---------------------------
 * A stream is named by (seed, purpose, step, index); the element counter
 * runs within it. Per-example streams use the global example index, never
 * the rank, so a run does not depend on how a batch is split over ranks.
 * Purposes are built with GT_PURPOSE(kind, sub). */
enum gt_rng_kind {
    GT_RNG_INIT = 1,     /* weight init: sub = net << 8 | layer, index = tensor */
    GT_RNG_LATENT,       /* GAN latent z: sub = phase */
    GT_RNG_DROPOUT,      /* dropout masks: sub = call << 8 | layer */
    GT_RNG_BINARIZE,     /* dynamic binarization of VAE inputs */
    GT_RNG_REPARAM,      /* VAE reparameterization noise */
    GT_RNG_SHUFFLE,      /* sampler permutation: step = epoch */
    GT_RNG_TOY,          /* 2-D toy data points */
    GT_RNG_FIXED_NOISE,  /* the fixed latent batch of samples */
    GT_RNG_TEST,         /* tests */
    GT_RNG_EVAL,         /* evaluation metrics: sub = GT_EVAL_RNG_* (gentrain/eval.h) */
    GT_RNG_NOISE         /* GAN instance noise on D's inputs: sub 0 = real, 1 = generated examples */
};
#define GT_PURPOSE(kind, sub) (((uint32_t)(kind) << 24) | ((uint32_t)(sub) & 0xffffffu))

void gt_philox4x32(const uint32_t ctr[4], uint64_t key, uint32_t out[4]);
/* n uniform floats in (0, 1) / n standard normal floats for one stream. */
void gt_rand_uniform(float *out, size_t n, uint64_t seed, uint32_t purpose, uint64_t step, uint64_t index);
void gt_rand_normal(float *out, size_t n, uint64_t seed, uint32_t purpose, uint64_t step, uint64_t index);
/* The widest vector instructions gt_rand_uniform may use (GT_RNG_ISA_*; the
 * default is AVX512), for tests that compare every path with one block at a
 * time: returns the path the CPU then runs. Every path gives the same bits. */
enum { GT_RNG_ISA_GENERIC, GT_RNG_ISA_AVX2, GT_RNG_ISA_AVX512 };
int gt_rand_set_isa(int cap);
/* One 64-bit random word: element `i` of a stream. */
uint64_t gt_rand_u64(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t index, uint64_t i);

/* ---- BLAS and LAPACK (src/core/blas.c is the only code that includes them) --- */

/* Row-major C[M,N] = alpha * op(A)[M,K] op(B)[K,N] + beta * C, in panels
 * over the threads (src/core/blas.c): bitwise the same for any thread count. */
void gt_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
/* The same in double (the evaluation metrics' statistics). */
void gt_dgemm(int trans_a, int trans_b, int M, int N, int K, double alpha, const double *A, int lda, const double *B,
              int ldb, double beta, double *C, int ldc);
/* Upper triangle of C[N,N] = alpha * op(A) op(A)^T + beta * C; op(A) [N,K] (trans: A is [K,N]). */
void gt_dsyrk(int trans, int N, int K, double alpha, const double *A, int lda, double beta, double *C, int ldc);
/* Eigenvalues w[n] (ascending) and, with vectors, the eigenvectors (in the columns of a) of the
 * symmetric a[n,n] (upper triangle read; overwritten): LAPACK's dsyevd. Returns
 * LAPACK's info (0 = fine). */
int gt_dsyevd(int vectors, int n, double *a, double *w);
/* The name of the kernel OpenBLAS runs on this CPU (e.g. "Haswell", "Cooperlake"; "unknown" if it says none),
 * as OPENBLAS_CORETYPE sets or OpenBLAS's own CPU detection picks it. */
const char *gt_blas_kernel_name(void);
/* Threads of this process (run.threads): OpenMP threads for the loops of
 * nn, optim and data and for the panels of every GEMM (OpenBLAS itself runs
 * single-threaded). Every parallel loop writes disjoint outputs and every
 * reduction keeps one order, so results are bitwise the same for any count. */
void gt_set_threads(int n);
int gt_threads(void);

/* ---- bfloat16 ------------------------------------------------------------
 * A float's upper 16 bits, rounded to nearest (ties to even, as torch's
 * float -> bfloat16); NaN stays a (quiet) NaN, infinities stay, a rounding
 * that overflows gives an infinity. Inline: the compressed allreduce's
 * MPI_Op (src/dist/reduce.c) calls them per element. */
static inline uint16_t gt_bf16_from_float(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u); /* NaN: keep it quiet */
    u += 0x7fffu + ((u >> 16) & 1u);                                             /* to nearest, ties to even */
    return (uint16_t)(u >> 16);
}
static inline float gt_bf16_to_float(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}
static inline void gt_bf16_from_floats(uint16_t *out, const float *in, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = gt_bf16_from_float(in[i]);
}

/* ---- small helpers ----------------------------------------------------- */
#define GT_PI 3.14159265358979323846
double gt_now(void);           /* monotonic seconds */
/* 64-bit FNV-1a over bytes, for parameter hashes and config fingerprints. */
uint64_t gt_hash_bytes(const void *data, size_t n, uint64_t h);
#define GT_HASH_INIT 1469598103934665603ull
/* The program's version and the git revision it was built from. */
const char *gt_version(void);

#endif
