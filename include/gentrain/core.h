/* core: errors, logging, allocation, the Philox RNG, BLAS wrappers.
 *
 * Every failure goes through gt_fatal: one line on stderr naming what went
 * wrong and where (source file and line), then the process ends. Under MPI,
 * src/dist installs an abort hook so that one failing rank ends all ranks. */
#ifndef GENTRAIN_CORE_H
#define GENTRAIN_CORE_H

#include <stddef.h>
#include <stdint.h>

/* ---- errors and logging ------------------------------------------------ */

_Noreturn void gt_fatal_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define gt_fatal(...) gt_fatal_at(__FILE__, __LINE__, __VA_ARGS__)
#define GT_CHECK(cond, ...)                                                    \
    do {                                                                       \
        if (!(cond)) gt_fatal_at(__FILE__, __LINE__, __VA_ARGS__);             \
    } while (0)

/* A broken invariant (a bug in gentrain, never bad input): same exit as gt_fatal. */
#define GT_ASSERT(cond, ...) GT_CHECK(cond, __VA_ARGS__)

/* Called by gt_fatal after the message is printed; default: exit(code). */
void gt_set_abort_hook(void (*hook)(int code)); /* must not return */
/* Exit codes of the gentrain program. */
#define GT_EXIT_ERROR 1    /* gt_fatal: something is wrong, a message says what */
#define GT_EXIT_USAGE 2    /* bad command line */
#define GT_EXIT_REQUEUE 75 /* stopped on SIGTERM/SIGUSR1 after writing a checkpoint: requeue me (EX_TEMPFAIL) */

/* Only the process whose log rank is 0 prints info lines; warnings and
 * errors print on every rank, prefixed with the rank when there are several. */
void gt_set_log_rank(int rank, int size);
int gt_log_rank(void);
void gt_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void gt_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- allocation: checked, 64-byte aligned, zeroed ---------------------- */

void *gt_alloc_at(const char *file, int line, size_t bytes);
#define gt_alloc(bytes) gt_alloc_at(__FILE__, __LINE__, (bytes))
#define gt_alloc_floats(n) ((float *)gt_alloc_at(__FILE__, __LINE__, (size_t)(n) * sizeof(float)))
void gt_free(void *p);
char *gt_strdup_at(const char *file, int line, const char *s);
#define gt_strdup(s) gt_strdup_at(__FILE__, __LINE__, (s))

/* Denormal floats are flushed to zero (FTZ/DAZ) in the calling thread. */
void gt_flush_denormals(void);

/* ---- counter-based randomness (Philox4x32-10) ---------------------------
 * A stream is named by (seed, purpose, step, index); the element counter
 * runs within it. Per-example streams use the global example index, never
 * the rank, so a run does not depend on how a batch is split over ranks.
 * Purposes are built with GT_PURPOSE(kind, sub). */
enum gt_rng_kind {
    GT_RNG_INIT = 1,     /* weight init: sub = layer, index = tensor */
    GT_RNG_LATENT,       /* GAN latent z: sub = phase */
    GT_RNG_DROPOUT,      /* dropout masks: sub = call << 8 | layer */
    GT_RNG_BINARIZE,     /* dynamic binarization of VAE inputs */
    GT_RNG_REPARAM,      /* VAE reparameterization noise */
    GT_RNG_SHUFFLE,      /* sampler permutation: step = epoch */
    GT_RNG_TOY,          /* 2-D toy data points */
    GT_RNG_FIXED_NOISE,  /* the fixed latent batch of samples */
    GT_RNG_TEST,         /* tests */
    GT_RNG_EVAL          /* evaluation metrics: sub = GT_EVAL_RNG_* (gentrain/eval.h) */
};
#define GT_PURPOSE(kind, sub) (((uint32_t)(kind) << 24) | ((uint32_t)(sub) & 0xffffffu))

void gt_philox4x32(const uint32_t ctr[4], uint64_t key, uint32_t out[4]);
/* n uniform floats in (0, 1) / n standard normal floats for one stream. */
void gt_rand_uniform(float *out, size_t n, uint64_t seed, uint32_t purpose, uint64_t step, uint64_t index);
void gt_rand_normal(float *out, size_t n, uint64_t seed, uint32_t purpose, uint64_t step, uint64_t index);
/* One 64-bit random word: element `i` of a stream. */
uint64_t gt_rand_u64(uint64_t seed, uint32_t purpose, uint64_t step, uint64_t index, uint64_t i);

/* ---- BLAS -------------------------------------------------------------- */

/* Row-major C[M,N] = alpha * op(A)[M,K] op(B)[K,N] + beta * C. */
void gt_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
void gt_blas_set_threads(int n);

/* ---- small helpers ----------------------------------------------------- */
#define GT_PI 3.14159265358979323846
double gt_now(void);           /* monotonic seconds */
/* 64-bit FNV-1a over bytes, for parameter hashes and config fingerprints. */
uint64_t gt_hash_bytes(const void *data, size_t n, uint64_t h);
#define GT_HASH_INIT 1469598103934665603ull

#endif
