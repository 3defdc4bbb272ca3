/* The loader (include/gentrain/data.h): batches of a source in the order of
 * a sampler, read ahead by a reader thread.
 *
 * A ring of depth + 1 slots, each a batch (indices, floats, labels, status).
 * The reader thread fills slot (head + filled) % cap while filled < cap,
 * taking the indices from its own copy of the sampler; the training thread
 * holds slot head between two gt_loader_next calls and releases it at the
 * next one, so `depth` batches can be read while one is in use (gt_loader_peek
 * lends out slot head + 1 early: a filled slot is the training thread's until
 * released, so that is safe). One mutex
 * guards the ring's counters and flags; the reader thread drops it while it
 * reads, and it alone touches the slot it fills until it publishes it
 * (filled++ under the mutex), so the training thread sees a complete batch.
 * Pausing: the reader thread checks `paused` before each read and, when set
 * (or when there is nothing to do), marks itself idle and waits; pause
 * waits for that mark. */
#include "gentrain/core.h"
#include "gentrain/data.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    int64_t *idx;
    float *x;
    int *labels;
    gt_status status;
    char error[1024]; /* the reader thread's message: errors are thread-local */
} slot_t;

struct gt_loader {
    gt_source *src;
    gt_sampler ahead; /* the loader's copy of the sampler: the indices of the batches to read */
    gt_pixel_scale scale;
    int depth, cap, batch, want_labels;
    size_t size;
    slot_t *slot;
    int64_t count, produced; /* batches to read in all, batches read so far */
    /* ring state, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv_reader; /* the reader thread waits here for room, resume or stop */
    pthread_cond_t cv_main;   /* the training thread waits here for a batch or for the reader to be idle */
    int head, filled, held, paused, stop, idle;
    int thread_started;
    pthread_t thread;
    double wait_s; /* the training thread's time in gt_loader_next (waiting, or reading at depth 0) */
};

static void lock(gt_loader *l) {
    int rc = pthread_mutex_lock(&l->mu);
    GT_ASSERT(rc == 0, "loader: pthread_mutex_lock failed (%d)", rc);
}
static void unlock(gt_loader *l) {
    int rc = pthread_mutex_unlock(&l->mu);
    GT_ASSERT(rc == 0, "loader: pthread_mutex_unlock failed (%d)", rc);
}
static void wait_on(pthread_cond_t *cv, gt_loader *l) {
    int rc = pthread_cond_wait(cv, &l->mu);
    GT_ASSERT(rc == 0, "loader: pthread_cond_wait failed (%d)", rc);
}
static void wake(pthread_cond_t *cv) {
    int rc = pthread_cond_broadcast(cv);
    GT_ASSERT(rc == 0, "loader: pthread_cond_broadcast failed (%d)", rc);
}

/* Fills one slot: the next indices of the loader's sampler, then the read. */
static void fill(gt_loader *l, slot_t *s) {
    gt_sampler_next(&l->ahead, s->idx);
    s->status = gt_source_read(l->src, s->idx, l->batch, l->scale, s->x, l->want_labels ? s->labels : NULL);
    s->error[0] = '\0';
    if (s->status) {
        snprintf(s->error, sizeof s->error, "%s", gt_error_message());
        gt_error_clear();
    }
}

static void *reader_main(void *arg) {
    gt_loader *l = arg;
    lock(l);
    for (;;) {
        while (!l->stop && (l->paused || l->filled == l->cap || l->produced == l->count)) {
            l->idle = 1;
            wake(&l->cv_main);
            wait_on(&l->cv_reader, l);
        }
        if (l->stop) break;
        l->idle = 0;
        slot_t *s = &l->slot[(l->head + l->filled) % l->cap];
        unlock(l);
        fill(l, s);
        lock(l);
        l->filled++;
        l->produced++;
        wake(&l->cv_main);
    }
    l->idle = 1;
    wake(&l->cv_main);
    unlock(l);
    return NULL;
}

void gt_loader_new(gt_source *src, const gt_sampler *s, int64_t count, int depth, gt_pixel_scale scale, int labels,
                   gt_loader **out) {
    GT_ASSERT(src != NULL && s != NULL && count >= 0 && depth >= 0, "gt_loader_new: bad arguments");
    gt_loader *l = gt_alloc(sizeof *l);
    l->src = src;
    gt_sampler_copy(&l->ahead, s);
    l->scale = scale;
    l->depth = depth;
    l->cap = depth + 1;
    l->batch = s->batch;
    l->want_labels = labels && src->has_labels;
    l->size = gt_shape_size(src->shape);
    l->count = count;
    l->slot = gt_alloc(sizeof *l->slot * (size_t)l->cap);
    for (int i = 0; i < l->cap; i++) {
        l->slot[i].idx = gt_alloc(sizeof(int64_t) * (size_t)l->batch);
        l->slot[i].x = gt_alloc_floats((size_t)l->batch * l->size);
        if (l->want_labels) l->slot[i].labels = gt_alloc(sizeof(int) * (size_t)l->batch);
    }
    int rc = pthread_mutex_init(&l->mu, NULL);
    if (!rc) rc = pthread_cond_init(&l->cv_reader, NULL);
    if (!rc) rc = pthread_cond_init(&l->cv_main, NULL);
    GT_ASSERT(rc == 0, "loader: cannot initialize its mutex and conditions (%d)", rc);
    l->idle = 1;
    if (depth > 0) {
        /* the thread inherits a mask blocking every signal: stop signals reach the training thread */
        sigset_t all, old;
        sigfillset(&all);
        rc = pthread_sigmask(SIG_SETMASK, &all, &old);
        GT_ASSERT(rc == 0, "loader: pthread_sigmask failed (%d)", rc);
        rc = pthread_create(&l->thread, NULL, reader_main, l);
        int rc2 = pthread_sigmask(SIG_SETMASK, &old, NULL);
        GT_ASSERT(rc == 0, "loader: cannot start the reader thread (%s)", strerror(rc));
        GT_ASSERT(rc2 == 0, "loader: pthread_sigmask failed (%d)", rc2);
        l->thread_started = 1;
    }
    *out = l;
}

gt_status gt_loader_next(gt_loader *l, const int64_t *idx, float **x, int **labels) {
    slot_t *s;
    double t0 = gt_now();
    if (l->depth == 0) {
        GT_ASSERT(l->produced < l->count, "loader: more batches asked for than the %lld announced", (long long)l->count);
        s = &l->slot[0];
        fill(l, s);
        l->produced++;
    } else {
        lock(l);
        GT_ASSERT(!l->paused, "loader: gt_loader_next while paused");
        if (l->held) { /* release the batch the caller was using */
            l->head = (l->head + 1) % l->cap;
            l->filled--;
            l->held = 0;
            wake(&l->cv_reader);
        }
        GT_ASSERT(l->filled > 0 || l->produced < l->count, "loader: more batches asked for than the %lld announced",
                  (long long)l->count);
        while (l->filled == 0) wait_on(&l->cv_main, l);
        l->held = 1;
        s = &l->slot[l->head];
        unlock(l);
    }
    l->wait_s += gt_now() - t0;
    for (int j = 0; j < l->batch; j++)
        GT_ASSERT(s->idx[j] == idx[j], "loader: batch position %d is example %lld but the sampler gave %lld", j,
                  (long long)s->idx[j], (long long)idx[j]);
    *x = s->x;
    *labels = l->want_labels ? s->labels : NULL;
    if (s->status) return GT_ERROR("%s", s->error);
    return GT_OK;
}

float *gt_loader_peek(gt_loader *l) {
    if (l->depth == 0) return NULL;
    double t0 = gt_now();
    lock(l);
    GT_ASSERT(!l->paused && l->held, "loader: gt_loader_peek while paused or before gt_loader_next");
    while (l->filled < 2 && l->produced < l->count) wait_on(&l->cv_main, l);
    slot_t *s = l->filled < 2 ? NULL : &l->slot[(l->head + 1) % l->cap];
    unlock(l);
    l->wait_s += gt_now() - t0;
    return s && !s->status ? s->x : NULL;
}

void gt_loader_pause(gt_loader *l) {
    if (!l || l->depth == 0) return;
    lock(l);
    l->paused = 1;
    while (!l->idle) wait_on(&l->cv_main, l);
    unlock(l);
}

void gt_loader_resume(gt_loader *l) {
    if (!l || l->depth == 0) return;
    lock(l);
    if (l->paused) {
        l->paused = 0;
        wake(&l->cv_reader);
    }
    unlock(l);
}

void gt_loader_reseek(gt_loader *l, const gt_sampler *s, int64_t count) {
    if (!l) return;
    GT_ASSERT(s != NULL && s->perm != NULL && count >= 0, "gt_loader_reseek: bad arguments");
    GT_ASSERT(s->batch == l->batch, "gt_loader_reseek: the sampler's batch %d is not the loader's %d", s->batch,
              l->batch);
    /* Under the mutex, with the reader thread idle (it is between reads and
     * waits for the mutex or a wake-up): nothing else touches the ring. */
    lock(l);
    int was_paused = l->paused;
    l->paused = 1;
    while (!l->idle) wait_on(&l->cv_main, l);
    gt_sampler_free(&l->ahead);
    gt_sampler_copy(&l->ahead, s);
    l->head = l->filled = l->held = 0;
    l->produced = 0;
    l->count = count;
    l->paused = was_paused;
    if (!was_paused) wake(&l->cv_reader);
    unlock(l);
}

double gt_loader_wait_seconds(const gt_loader *l) { return l->wait_s; }

size_t gt_loader_bytes(const gt_loader *l) {
    return (size_t)l->cap * ((size_t)l->batch * (l->size * sizeof(float) + sizeof(int64_t) +
                                                 (l->want_labels ? sizeof(int) : 0)));
}

void gt_loader_free(gt_loader *l) {
    if (!l) return;
    if (l->thread_started) {
        lock(l);
        l->stop = 1;
        wake(&l->cv_reader);
        unlock(l);
        int rc = pthread_join(l->thread, NULL);
        GT_ASSERT(rc == 0, "loader: pthread_join failed (%d)", rc);
    }
    pthread_cond_destroy(&l->cv_reader);
    pthread_cond_destroy(&l->cv_main);
    pthread_mutex_destroy(&l->mu);
    for (int i = 0; i < l->cap; i++) {
        gt_free(l->slot[i].idx);
        gt_free(l->slot[i].x);
        gt_free(l->slot[i].labels);
    }
    gt_free(l->slot);
    gt_sampler_free(&l->ahead);
    gt_free(l);
}
