/* The step watchdog (include/gentrain/dist.h, internal.h): a rank that stops
 * answering (SIGSTOP, a hung node, a dead network link) must not leave the
 * others spinning in a collective forever.
 *
 * Every collective of gentrain is non-blocking and completes through
 * gt_dist_wait(), on the main thread (MPI is initialized without threads).
 * Outside a watched training step that is MPI_Waitall. Inside one
 * (gt_dist_watch_step ... gt_dist_watch_off) it polls MPI_Testall, and every
 * POLL_CHECK polls it also reads the clock and tests one receive that is
 * always posted on a communicator of its own (watch_comm, a duplicate of
 * MPI_COMM_WORLD that nothing else uses). Blocking collectives in Open MPI
 * poll the same way, so this costs a clock read per POLL_CHECK polls.
 *
 * At the step's deadline, or as soon as another rank's watchdog message
 * arrives, a rank "fires":
 *   1. it sends ALIVE (its rank, step, what it waits in, for how long) to
 *      every other rank, and collects the ALIVE of the others for up to
 *      GRACE_S seconds (a live rank waiting in any collective joins at once:
 *      it sees the message in its poll loop and fires too);
 *   2. it prints one line: the step, what it waited in and for how long, and
 *      the ranks that did not answer (stopped, hung, dead, or stuck in a long
 *      computation), or, if every rank answered, where each one waits;
 *   3. it sends DONE to the ranks that answered and waits up to DONE_S
 *      seconds for theirs, so that every live rank's line is out before
 *   4. MPI_Abort ends the job (exit code 1, through gt_panic).
 * A watchdog is a panic, like a failing MPI call: the job can no longer
 * communicate, there is nothing to return to. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "gentrain/core.h"
#include "gentrain/dist.h"
#include "internal.h"

#define POLL_CHECK 128 /* MPI_Testall polls between clock reads */
#define GRACE_S 5.0    /* how long the live ranks collect each other's answers */
#define DONE_S 5.0     /* how long a rank waits for the others' lines before the abort */
#define AUTO_FACTOR 10.0
#define AUTO_MIN_S 300.0      /* automatic timeout: at least 5 minutes */
#define CKPT_ALLOWANCE_S 1800.0 /* a step that ends in a checkpoint: at least 30 minutes more */

enum { TAG_WATCH = 7001 };
enum { MSG_ALIVE = 1, MSG_DONE = 2 };

typedef struct {
    int32_t rank, kind;
    int64_t step;
    double waited;
    char what[112];
} watch_msg;

static struct {
    MPI_Comm comm;
    MPI_Request req; /* the receive that is always posted on comm */
    watch_msg in;
    int armed;
    long step;                 /* 1-based: the step being done */
    double timeout;            /* 0 = automatic */
    double begin, deadline;    /* this step's start and deadline */
    double last_begin, slowest; /* begin-to-begin intervals seen so far */
    int io_step;               /* rank 0 writes a checkpoint at this step's end */
    double slowest_io;
} W = {.comm = MPI_COMM_NULL, .req = MPI_REQUEST_NULL};

/* SIGCONT: this process was stopped and continued; the handler notes when
 * (clock_gettime is async-signal-safe). A rank that was stopped, and is
 * continued by the launcher only to be ended, says so instead of blaming the
 * others. */
static volatile sig_atomic_t continued;
static struct timespec continued_at;
static void on_sigcont(int sig) {
    (void)sig;
    clock_gettime(CLOCK_MONOTONIC, &continued_at);
    continued = 1;
}
static double seconds_since_continued(void) {
    if (!continued) return 1e30;
    return gt_now() - ((double)continued_at.tv_sec + 1e-9 * (double)continued_at.tv_nsec);
}

static void post_receive(void) {
    MPI_CHECK(MPI_Irecv(&W.in, (int)sizeof W.in, MPI_BYTE, MPI_ANY_SOURCE, TAG_WATCH, W.comm, &W.req));
}

void gt_dist_watch_init(void) {
    if (gt_dist_size() < 2) return;
    MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &W.comm));
    post_receive();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigcont;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGCONT, &sa, NULL); /* failure only loses the "I was stopped" line */
}

void gt_dist_watch_finalize(void) {
    if (W.comm == MPI_COMM_NULL) return;
    if (W.req != MPI_REQUEST_NULL) {
        MPI_CHECK(MPI_Cancel(&W.req));
        MPI_CHECK(MPI_Wait(&W.req, MPI_STATUS_IGNORE));
    }
    MPI_CHECK(MPI_Comm_free(&W.comm));
}

double gt_dist_watch_timeout(double timeout) {
    if (timeout > 0) return timeout;
    double t = AUTO_FACTOR * W.slowest;
    return t > AUTO_MIN_S ? t : AUTO_MIN_S;
}

void gt_dist_watch_step(long step, double timeout) {
    if (W.comm == MPI_COMM_NULL) return;
    double now = gt_now();
    if (W.armed && W.last_begin > 0) {
        double interval = now - W.last_begin;
        if (W.io_step) {
            if (interval > W.slowest_io) W.slowest_io = interval;
        } else if (interval > W.slowest) {
            W.slowest = interval;
        }
    }
    W.armed = 1;
    W.step = step;
    W.timeout = timeout;
    W.begin = W.last_begin = now;
    W.io_step = 0;
    W.deadline = now + gt_dist_watch_timeout(timeout);
}

void gt_dist_watch_io(void) {
    if (!W.armed) return;
    W.io_step = 1;
    double allowance = AUTO_FACTOR * W.slowest_io;
    if (allowance < CKPT_ALLOWANCE_S) allowance = CKPT_ALLOWANCE_S;
    double d = gt_now() + allowance;
    if (d > W.deadline) W.deadline = d;
}

void gt_dist_watch_off(void) {
    W.armed = 0;
    W.last_begin = 0;
}

static void send_all(int kind, double waited, const char *what, const int *to) {
    static watch_msg out[2]; /* kept alive until the abort: the sends are never waited for */
    watch_msg *m = &out[kind - 1];
    memset(m, 0, sizeof *m);
    m->rank = gt_dist_rank();
    m->kind = kind;
    m->step = W.step;
    m->waited = waited;
    snprintf(m->what, sizeof m->what, "%s", what);
    for (int r = 0; r < gt_dist_size(); r++) {
        if (r == gt_dist_rank() || (to && !to[r])) continue;
        MPI_Request q;
        MPI_CHECK(MPI_Isend(m, (int)sizeof *m, MPI_BYTE, r, TAG_WATCH, W.comm, &q));
        MPI_CHECK(MPI_Request_free(&q));
    }
}

/* Takes the message in W.in (if any arrived) and posts the receive again. */
static int receive(watch_msg *m) {
    int got = 0;
    MPI_CHECK(MPI_Test(&W.req, &got, MPI_STATUS_IGNORE));
    if (!got) return 0;
    *m = W.in;
    m->what[sizeof m->what - 1] = '\0';
    post_receive();
    return 1;
}

/* fired: a message that arrived in the poll loop (another rank fired first);
 * frozen: the longest time this rank itself did not run during the wait
 * (between two looks at the clock, normally microseconds apart): a rank that
 * was stopped (SIGSTOP) and is continued only to be ended says so. */
static _Noreturn void fire(const char *what, double wait_begin, const watch_msg *fired, double frozen) {
    int world = gt_dist_size(), me = gt_dist_rank();
    double t0 = gt_now(), waited = t0 - wait_begin, step_age = t0 - W.begin;
    int *alive = gt_alloc(sizeof(int) * (size_t)world), *done = gt_alloc(sizeof(int) * (size_t)world);
    watch_msg *seen = gt_alloc(sizeof(watch_msg) * (size_t)world);
    alive[me] = done[me] = 1;
    int n_alive = 1, n_done = 1;
    watch_msg m;
    send_all(MSG_ALIVE, waited, what, NULL);
    /* 1. who answers within the grace period */
    for (int have = fired != NULL; n_alive < world && gt_now() - t0 < GRACE_S; have = receive(&m)) {
        if (fired) m = *fired, fired = NULL;
        if (!have || m.rank < 0 || m.rank >= world || m.rank == me) continue;
        if (!alive[m.rank]) alive[m.rank] = 1, n_alive++, seen[m.rank] = m;
        if (m.kind == MSG_DONE && !done[m.rank]) done[m.rank] = 1, n_done++;
    }
    /* 2. our line */
    char missing[1024] = "";
    size_t used = 0;
    for (int r = 0; r < world; r++)
        if (!alive[r] && used < sizeof missing)
            used += (size_t)snprintf(missing + used, sizeof missing - used, "%s%d", used ? ", " : "", r);
    char limit[96];
    if (W.timeout > 0)
        snprintf(limit, sizeof limit, "[dist] step_timeout = %g s", W.timeout);
    else
        snprintf(limit, sizeof limit, "[dist] step_timeout = 0: automatic, %.0f s for this step",
                 gt_dist_watch_timeout(0) + (W.io_step ? CKPT_ALLOWANCE_S : 0));
    char head[512];
    snprintf(head, sizeof head, "step %ld: watchdog: waited %.1f s in %s (the step began %.1f s ago)%s", W.step,
             waited, what, step_age,
             W.deadline > t0 ? "; another rank's watchdog fired first" : "");
    if (frozen > GRACE_S || seconds_since_continued() < 2 * GRACE_S) {
        fflush(stdout);
        fprintf(stderr, "gentrain[rank %d]: error: step %ld: watchdog: this rank was stopped (SIGSTOP or SIGTSTP%s) "
                        "and the other ranks' watchdog ends the job (%s) [%s:%d]\n",
                me, W.step, frozen > GRACE_S ? ", or its machine was suspended" : ", then continued", limit, __FILE__,
                __LINE__);
    } else if (n_alive < world) {
        fflush(stdout);
        fprintf(stderr, "gentrain[rank %d]: error: %s; rank%s %s did not answer within %.0f s (stopped, hung, dead, or "
                        "still computing): ending the job (%s) [%s:%d]\n",
                me, head, n_alive < world - 1 ? "s" : "", missing, GRACE_S, limit, __FILE__, __LINE__);
    } else {
        char where[2048] = "";
        used = 0;
        for (int r = 0; r < world && used < sizeof where; r++)
            if (r != me)
                used += (size_t)snprintf(where + used, sizeof where - used, "%srank %d at step %lld in %s", used ? "; " : "",
                                         r, (long long)seen[r].step, seen[r].what);
        fprintf(stderr, "gentrain[rank %d]: error: %s; every rank answers (%s), but the collective did not complete: "
                        "ending the job (%s) [%s:%d]\n",
                me, head, where, limit, __FILE__, __LINE__);
    }
    fflush(stderr);
    /* 3. the others' lines before the abort */
    send_all(MSG_DONE, waited, what, alive);
    double t1 = gt_now();
    while (n_done < n_alive && gt_now() - t1 < DONE_S) {
        if (!receive(&m) || m.rank < 0 || m.rank >= world) continue;
        if (m.kind == MSG_DONE && alive[m.rank] && !done[m.rank]) done[m.rank] = 1, n_done++;
    }
    /* 4. the job ends */
    MPI_Abort(MPI_COMM_WORLD, GT_ERR);
    gt_panic("MPI_Abort returned");
}

void gt_dist_wait(int n, MPI_Request *req, const char *what, const char *name) {
    if (n <= 0) return;
    if (!W.armed) {
        MPI_CHECK(MPI_Waitall(n, req, MPI_STATUSES_IGNORE));
        return;
    }
    double t_wait = gt_now(), last = t_wait, frozen = 0;
    for (unsigned polls = 1;; polls++) {
        int done = 0;
        MPI_CHECK(MPI_Testall(n, req, &done, MPI_STATUSES_IGNORE));
        if (done) return;
        if (polls % POLL_CHECK) continue;
        watch_msg m;
        int heard = receive(&m); /* another rank's watchdog fired */
        double now = gt_now();
        if (now - last > frozen) frozen = now - last;
        last = now;
        if (heard || now > W.deadline) {
            char label[112];
            snprintf(label, sizeof label, "%s%s%s", what, name ? " " : "", name ? name : "");
            fire(label, t_wait, heard ? &m : NULL, frozen);
        }
    }
}
