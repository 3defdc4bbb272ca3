/* Errors, warnings, info lines; checked allocation; denormal flushing. */
#include "gentrain/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xmmintrin.h>
#include <pmmintrin.h>

static void (*abort_hook)(int code);
static int log_rank, log_size = 1;

void gt_set_abort_hook(void (*hook)(int code)) { abort_hook = hook; }

void gt_set_log_rank(int rank, int size) {
    log_rank = rank;
    log_size = size;
}

int gt_log_rank(void) { return log_rank; }

static void prefix(FILE *f, const char *what) {
    if (log_size > 1)
        fprintf(f, "gentrain[rank %d]: %s", log_rank, what);
    else
        fprintf(f, "gentrain: %s", what);
}

_Noreturn void gt_fatal_at(const char *file, int line, const char *fmt, ...) {
    fflush(stdout);
    va_list ap;
    va_start(ap, fmt);
    prefix(stderr, "error: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " [%s:%d]\n", file, line);
    fflush(stderr);
    if (abort_hook) abort_hook(GT_EXIT_ERROR);
    exit(GT_EXIT_ERROR);
}

void gt_warn(const char *fmt, ...) {
    fflush(stdout);
    va_list ap;
    va_start(ap, fmt);
    prefix(stderr, "warning: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
}

void gt_info(const char *fmt, ...) {
    if (log_rank != 0) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

void *gt_alloc_at(const char *file, int line, size_t bytes) {
    size_t rounded = (bytes + 63) / 64 * 64;
    if (rounded == 0) rounded = 64;
    void *p = aligned_alloc(64, rounded);
    if (!p) gt_fatal_at(file, line, "out of memory allocating %zu bytes", bytes);
    memset(p, 0, rounded);
    return p;
}

void gt_free(void *p) { free(p); }

char *gt_strdup_at(const char *file, int line, const char *s) {
    size_t n = strlen(s) + 1;
    char *p = gt_alloc_at(file, line, n);
    memcpy(p, s, n);
    return p;
}

void gt_flush_denormals(void) {
    _MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_ON);
    _MM_SET_DENORMALS_ZERO_MODE(_MM_DENORMALS_ZERO_ON);
}

double gt_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

uint64_t gt_hash_bytes(const void *data, size_t n, uint64_t h) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}
