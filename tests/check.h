/* The C tests' harness: CHECK counts failures and prints where; a test
 * program ends with return check_report(NAME), whose closing line has the
 * form "NAME: N passed, N failed" that CI reads.
 *
 * Errors are values (core.h), so a test of bad input calls the function and
 * checks its status and message (CHECK_ERROR); only panics (broken
 * invariants) end a process, and check_panics runs those in a child. */
#ifndef GENTRAIN_TEST_CHECK_H
#define GENTRAIN_TEST_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gentrain/core.h"

static int check_passed, check_failed;

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (cond) {                                                            \
            check_passed++;                                                    \
        } else {                                                               \
            check_failed++;                                                    \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);               \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
        }                                                                      \
    } while (0)

/* |a - b| <= atol + rtol * max(|a|, |b|) */
static inline int check_close(double a, double b, double rtol, double atol) {
    return fabs(a - b) <= atol + rtol * fmax(fabs(a), fabs(b));
}

static inline int check_report(const char *name) {
    printf("%s: %d passed, %d failed\n", name, check_passed, check_failed);
    return check_failed ? 1 : 0;
}

/* A call that must succeed; on failure its message is printed. */
#define CHECK_OK(call, ...)                                                                                  \
    do {                                                                                                     \
        gt_status st_ = (call);                                                                              \
        CHECK(st_ == GT_OK, "%s: unexpected error: %s [%s]", #call, gt_error_message(), gt_error_where());  \
        if (st_ != GT_OK) gt_error_clear();                                                                  \
    } while (0)

/* A call that must fail with a message containing every needle (a
 * NULL-terminated list); the error is cleared afterwards. */
static inline void check_error_at(const char *file, int line, gt_status st, const char *what,
                                  const char *const *needles) {
    const char *msg = gt_error_message();
    if (st == GT_OK) {
        check_failed++;
        fprintf(stderr, "FAIL %s:%d: %s: succeeded, expected an error\n", file, line, what);
        return;
    }
    check_passed++;
    for (int i = 0; needles[i]; i++) {
        if (strstr(msg, needles[i])) {
            check_passed++;
        } else {
            check_failed++;
            fprintf(stderr, "FAIL %s:%d: %s: message lacks \"%s\": %s\n", file, line, what, needles[i], msg);
        }
    }
    gt_error_clear();
}
#define NEEDLES(...) ((const char *const[]){__VA_ARGS__, NULL})
#define CHECK_ERROR(call, what, ...) check_error_at(__FILE__, __LINE__, (call), (what), NEEDLES(__VA_ARGS__))

/* Runs fn(arg) in a child with its stderr captured into out; returns the
 * exit status (128 + signal if killed). */
static inline int check_run_child(void (*fn)(const void *), const void *arg, char *out, size_t cap) {
    int fd[2];
    if (pipe(fd) != 0) {
        perror("pipe");
        exit(2);
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        close(fd[0]);
        if (dup2(fd[1], 2) < 0) _exit(3);
        close(fd[1]);
        fn(arg);
        fflush(stderr);
        _exit(0);
    }
    close(fd[1]);
    size_t n = 0;
    for (;;) {
        ssize_t got = read(fd[0], out + n, cap - 1 - n);
        if (got <= 0) break;
        n += (size_t)got;
        if (n == cap - 1) break;
    }
    out[n] = '\0';
    close(fd[0]);
    int status;
    if (waitpid(pid, &status, 0) != pid) {
        perror("waitpid");
        exit(2);
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* fn(arg) must panic: exit status 1 and an error line containing the needles. */
static inline void check_panics_at(const char *file, int line, const char *what, void (*fn)(const void *),
                                   const void *arg, const char *const *needles) {
    char out[8192];
    int rc = check_run_child(fn, arg, out, sizeof out);
    if (rc != GT_ERR || !strstr(out, "gentrain: error: ")) {
        check_failed++;
        fprintf(stderr, "FAIL %s:%d: %s: exit status %d, expected a panic (1); stderr: %s\n", file, line, what, rc, out);
        return;
    }
    check_passed++;
    for (int i = 0; needles[i]; i++) {
        if (strstr(out, needles[i])) {
            check_passed++;
        } else {
            check_failed++;
            fprintf(stderr, "FAIL %s:%d: %s: message lacks \"%s\": %s\n", file, line, what, needles[i], out);
        }
    }
}
#define CHECK_PANICS(what, fn, arg, ...) check_panics_at(__FILE__, __LINE__, (what), (fn), (arg), NEEDLES(__VA_ARGS__))

#endif
