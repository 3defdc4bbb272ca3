/* Errors as values, panics, the one exit; logging; checked allocation;
 * denormal flushing. See core.h. */
#include "gentrain/core.h"

#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xmmintrin.h>
#include <pmmintrin.h>

static void (*exit_hook)(int code, int collective);
static int log_rank, log_size = 1;

void gt_set_exit_hook(void (*hook)(int code, int collective)) { exit_hook = hook; }

void gt_set_log_rank(int rank, int size) {
    log_rank = rank;
    log_size = size;
}

/* One line on stderr in one write: the ranks of a job share mpirun's stderr,
 * and a line written in pieces can come out interleaved with another rank's. */
static void log_line(const char *what, const char *body, const char *where) {
    char who[32] = "gentrain", line[8192];
    if (log_size > 1) snprintf(who, sizeof who, "gentrain[rank %d]", log_rank);
    snprintf(line, sizeof line, "%s: %s%s%s%s%s\n", who, what, body, where[0] ? " [" : "", where, where[0] ? "]" : "");
    fputs(line, stderr);
    fflush(stderr);
}

/* ---- errors ------------------------------------------------------------ */

/* The pending error of this thread: message, origin and callers. */
static _Thread_local struct {
    gt_status code;
    int collective;
    char msg[4096];
    char where[1024];
} pending;

static void add_where(const char *file, int line) {
    size_t n = strlen(pending.where);
    if (n + 8 >= sizeof pending.where) return; /* the first frames are the telling ones */
    snprintf(pending.where + n, sizeof pending.where - n, "%s%s:%d", n ? " < " : "", file, line);
}

/* A message longer than the buffer (a path of thousands of characters) keeps
 * its head and its tail, where the reason usually is ("...: File name too
 * long"), around a note of how much was left out. */
static void shorten(char *msg, size_t cap, const char *fmt, va_list ap) {
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(msg, cap, fmt, ap);
    if (n >= 0 && (size_t)n >= cap) {
        char *full = malloc((size_t)n + 1);
        if (full) {
            vsnprintf(full, (size_t)n + 1, fmt, again);
            size_t keep = (cap - 64) / 2;
            snprintf(msg, cap, "%.*s[... %zu characters ...]%s", (int)keep, full, (size_t)n - 2 * keep,
                     full + (size_t)n - keep);
            free(full);
        }
    }
    va_end(again);
}

gt_status gt_error_at(const char *file, int line, gt_status code, const char *fmt, ...) {
    char msg[sizeof pending.msg];
    va_list ap;
    va_start(ap, fmt);
    shorten(msg, sizeof msg, fmt, ap); /* may read the message it replaces */
    va_end(ap);
    memcpy(pending.msg, msg, sizeof msg);
    if (pending.code == GT_OK) pending.where[0] = '\0', pending.collective = 0;
    add_where(file, line);
    pending.code = code == GT_OK ? GT_ERR : code;
    return pending.code;
}

gt_status gt_error_trace(const char *file, int line, gt_status code) {
    if (pending.code == GT_OK) { /* a status without a message: a bug, but say something */
        snprintf(pending.msg, sizeof pending.msg, "failed (status %d, no message recorded)", (int)code);
        pending.where[0] = '\0';
        pending.code = code;
    }
    add_where(file, line);
    return code;
}

gt_status gt_error_collective(gt_status code) {
    pending.collective = 1;
    return code;
}

const char *gt_error_message(void) { return pending.msg; }
const char *gt_error_where(void) { return pending.where; }

void gt_error_clear(void) {
    pending.code = GT_OK;
    pending.collective = 0;
    pending.msg[0] = pending.where[0] = '\0';
}

static _Noreturn void end_process(int code, int collective) {
    fflush(stderr);
    if (exit_hook) exit_hook(code, collective);
    exit(code);
}

_Noreturn void gt_exit_error(gt_status code) {
    fflush(stdout);
    int collective = pending.code != GT_OK && pending.collective;
    if (!collective || log_rank == 0) {
        if (pending.code != GT_OK)
            log_line("error: ", pending.msg, pending.where);
        else {
            char msg[64];
            snprintf(msg, sizeof msg, "failed (status %d, no message recorded)", (int)code);
            log_line("error: ", msg, "");
        }
    }
    end_process(code == GT_OK ? GT_ERR : (int)code, collective);
}

_Noreturn void gt_panic_at(const char *file, int line, const char *fmt, ...) {
    fflush(stdout);
    char msg[sizeof pending.msg], where[256];
    va_list ap;
    va_start(ap, fmt);
    shorten(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(where, sizeof where, "%s:%d", file, line);
    log_line("error: ", msg, where);
    end_process(GT_ERR, 0);
}

/* ---- logging ------------------------------------------------------------ */

void gt_warn(const char *fmt, ...) {
    fflush(stdout);
    char msg[sizeof pending.msg];
    va_list ap;
    va_start(ap, fmt);
    shorten(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_line("warning: ", msg, "");
}

static int info_stderr;
void gt_set_info_stderr(int on) { info_stderr = on; }

void gt_info(const char *fmt, ...) {
    if (log_rank != 0) return;
    FILE *out = info_stderr ? stderr : stdout;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(out, fmt, ap);
    va_end(ap);
    fputc('\n', out);
    fflush(out);
}

/* ---- allocation ---------------------------------------------------------- */

void *gt_alloc_at(const char *file, int line, size_t bytes) {
    if (bytes > SIZE_MAX - 64) gt_panic_at(file, line, "out of memory: %zu bytes requested", bytes);
    size_t rounded = (bytes + 63) / 64 * 64;
    if (rounded == 0) rounded = 64;
    void *p = aligned_alloc(64, rounded);
    if (!p) gt_panic_at(file, line, "out of memory allocating %zu bytes", bytes);
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

void gt_keep_freed_memory(void) {
#ifndef __SANITIZE_ADDRESS__ /* AddressSanitizer's allocator has its own rules */
    /* the user's own settings win (glibc reads them at the first malloc) */
    if (getenv("MALLOC_TRIM_THRESHOLD_") || getenv("MALLOC_MMAP_THRESHOLD_") || getenv("MALLOC_TOP_PAD_") ||
        getenv("GLIBC_TUNABLES"))
        return;
    /* 32 MiB is the largest mmap threshold glibc accepts on 64-bit systems */
    if (mallopt(M_MMAP_THRESHOLD, 32 << 20) != 1 || mallopt(M_TRIM_THRESHOLD, 256 << 20) != 1)
        gt_warn("mallopt failed: freed memory goes back to the system at once (slower steps, not wrong ones)");
#endif
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
