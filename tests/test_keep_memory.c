/* gt_keep_freed_memory (include/gentrain/core.h) on the pattern it exists
 * for: Open MPI's non-blocking allreduce allocates a temporary buffer the
 * size of each message, and with overlapped buckets several (vae: two of
 * 3.2 MB, here three) are in flight at once and freed at the end of every
 * step. With glibc's defaults the heap's top then passes the trim threshold
 * (twice the largest block freed so far), goes back to the
 * system and is faulted in again at the next step (a child process shows
 * it: the control that this test can fail); after gt_keep_freed_memory the
 * repeated steps fault (almost) no pages in. Page faults are read with
 * getrusage (ru_minflt). Under AddressSanitizer (its own allocator) only the
 * call itself runs: the fault counts are checked in the release build. */
#include "gentrain/core.h"

#include "check.h"

#include <sys/resource.h>

#define BLOCK ((size_t)3200000)
#define STEPS 10

#ifndef __SANITIZE_ADDRESS__

static long minor_faults(void) {
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_minflt : -1;
}

/* the compiler may drop a malloc, memset and free of a block nobody reads */
static void keep(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

/* page faults of STEPS steps of the pattern, after one step to warm up */
static long faults_of_steps(void) {
    void *warm = malloc(BLOCK); /* one block alone first: glibc's mmap threshold rises to its size */
    if (!warm) return -1;
    memset(warm, 1, BLOCK);
    keep(warm);
    free(warm);
    long before = 0;
    for (int step = 0; step <= STEPS; step++) {
        if (step == 1) before = minor_faults();
        char *a = malloc(BLOCK), *b = malloc(BLOCK), *c = malloc(BLOCK);
        if (!a || !b || !c) return -1;
        memset(a, 2, BLOCK);
        memset(b, 3, BLOCK);
        memset(c, 4, BLOCK);
        keep(a);
        keep(b);
        keep(c);
        free(a);
        free(b);
        free(c);
    }
    return minor_faults() - before;
}
#endif

int main(void) {
#ifdef __SANITIZE_ADDRESS__
    gt_keep_freed_memory();
    CHECK(1, "the call returns (fault counts: release build only)");
#else
    long pages = (long)(3 * BLOCK / 4096); /* what one step faults in when the heap is returned */
    pid_t pid = fork();
    if (pid == 0) _exit(faults_of_steps() >= STEPS * pages / 2 ? 0 : 1); /* glibc's defaults */
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "control: with glibc's defaults the %d steps fault at least %ld pages in (the heap goes back every step)",
          STEPS, STEPS * pages / 2);
    gt_keep_freed_memory();
    long faults = faults_of_steps();
    CHECK(faults >= 0 && faults < pages / 4, "after gt_keep_freed_memory %d steps fault %ld pages in (less than %ld)",
          STEPS, faults, pages / 4);
#endif
    return check_report("test_keep_memory");
}
