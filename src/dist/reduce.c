/* The gradient allreduce (include/gentrain/dist.h): bucketed and overlapped
 * with backward, or one call after it.
 *
 * Overlapped mode. gt_net's backward calls the grads-ready hook each time a
 * layer's parameter gradients are done, i.e. grads[offset, n_params) are
 * final; offsets decrease because layers run in reverse. The reducer keeps
 * `posted`, the start of the tail that is already on its way: when the final
 * but unposted range [offset, posted) holds at least bucket_mb, it starts an
 * MPI_Iallreduce(MPI_SUM) on it in place and moves `posted` down to offset.
 * So buckets end on layer boundaries, hold whole layers (a layer larger than
 * a bucket is a bucket of its own) and go out in reverse layer order while
 * backward continues with the earlier layers; the layer at offset 0 sends
 * whatever is left at once. The progress hook (gt_net.progress, called after
 * every layer of every pass of the step) MPI_Testall's the buckets in flight:
 * Open MPI moves data over TCP only inside MPI calls (no progress thread), so
 * without these pokes a bucket would mostly move when we finally wait for it
 * (with one poke every few milliseconds an 8 MB sum over a 1 Gbit/s link
 * completes in the background). gt_step_ctx.reduce_grads
 * (called by the model right before the optimizer step) posts what is left
 * ([0, posted)), waits for every bucket, and divides by the world size.
 *
 * Plain mode: no hook; reduce_grads is one MPI_Iallreduce over the buffer,
 * waited for at once.
 *
 * Compression ([dist] compress = bf16, either mode): post() rounds a
 * bucket's gradients to bfloat16 into the slot's wire buffer and sums those
 * with bf16_sum (two bfloat16 values added in float, rounded once), so half
 * the bytes cross the link; reduce_grads turns the result back into floats
 * before the division. At 2 ranks every element is bf16(bf16(g0) +
 * bf16(g1)) in both modes; at more, the ring rounds each hop's partial sum.
 *
 * Every wait goes through gt_dist_wait (watchdog.c), which watches the
 * step's deadline; the sums use libnbc's ring algorithm where it can be
 * chosen (dist.c: as fast as the blocking MPI_Allreduce, which could not be
 * watched).
 *
 * Both modes give bitwise identical results at 2 ranks, whatever algorithm
 * Open MPI picks for a message size (ring, binomial, recursive doubling,
 * ...): every element's
 * result is the sum of exactly two floats, one from each rank, and a single
 * IEEE-754 addition is commutative and correctly rounded, so g0 + g1 and
 * g1 + g0 are the same float (the only freedom an algorithm has with two
 * operands is their order). The division by the world size is the same
 * code in both modes. At 3 or more ranks an algorithm may group the sum
 * differently ((g0+g1)+g2 vs g0+(g1+g2)) depending on the message size, so the
 * two modes can differ in the last bit there (each still gives every rank the
 * same result: Open MPI's allreduce algorithms reduce each element once and
 * distribute it, or combine pairs symmetrically). tests/mpi_replicas.sh
 * checks the 2-rank identity.
 *
 * Gradient reductions run on a duplicate of MPI_COMM_WORLD (internal.h), so
 * the synchronized batch norm's blocking allreduces, which happen while
 * buckets are in flight, never match against them. Every rank posts the
 * same buckets in the same order because the boundaries depend only on the
 * layer table and bucket_mb, which the start-up check makes agree. */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "gentrain/core.h"
#include "gentrain/dist.h"
#include "internal.h"

#define MAX_SLOTS 8

typedef struct {
    gt_dist_reducer *owner;
    const gt_net *net;
    float *grads;
    size_t n;
    size_t posted;     /* grads[posted, n) are posted (in flight or done) */
    size_t last_ready; /* lowest offset reported in this round: offsets must decrease */
    int n_req, cap_req;
    MPI_Request *req;
    uint16_t *wire; /* compress = bf16: the gradients in bfloat16 while they travel [n] */
} slot_t;

struct gt_dist_reducer {
    int overlap, compress;
    MPI_Op bf16_sum; /* compress = bf16, more than one rank */
    size_t bucket_floats;
    int n_slots;
    slot_t slot[MAX_SLOTS];
    long n_buckets; /* buckets posted so far (for tests and the start-up log) */
};

/* The MPI_Op of compress = bf16: inout[i] = bf16(float(in[i]) + float(inout[i])),
 * the sum of two bfloat16 values in float, rounded once. Commutative: at two
 * ranks every result is one such sum, whatever the algorithm. */
static void bf16_sum(void *in, void *inout, int *len, MPI_Datatype *type) {
    (void)type;
    const uint16_t *a = in;
    uint16_t *b = inout;
    for (int i = 0; i < *len; i++) b[i] = gt_bf16_from_float(gt_bf16_to_float(a[i]) + gt_bf16_to_float(b[i]));
}

gt_dist_reducer *gt_dist_reducer_new(int overlap, double bucket_mb, int compress) {
    GT_ASSERT(bucket_mb >= 0, "[dist] bucket_mb must be >= 0 (got %g)", bucket_mb);
    gt_dist_reducer *r = gt_alloc(sizeof *r);
    r->overlap = overlap ? 1 : 0;
    r->compress = compress && gt_dist_size() > 1;
    if (r->compress) MPI_CHECK(MPI_Op_create(bf16_sum, 1, &r->bf16_sum));
    double floats = bucket_mb * 1024.0 * 1024.0 / sizeof(float);
    r->bucket_floats = floats < 1 ? 1 : (size_t)floats;
    return r;
}

void gt_dist_reducer_free(gt_dist_reducer *r) {
    if (!r) return;
    for (int i = 0; i < r->n_slots; i++) {
        slot_t *s = &r->slot[i];
        GT_ASSERT(s->n_req == 0, "gradient reducer freed with %d buckets of %s in flight", s->n_req, s->net->name);
        gt_free(s->req);
        gt_free(s->wire);
    }
    if (r->compress) MPI_CHECK(MPI_Op_free(&r->bf16_sum));
    gt_free(r);
}

size_t gt_dist_reducer_bytes(const gt_dist_reducer *r) {
    size_t b = 0;
    for (int i = 0; r && i < r->n_slots; i++)
        if (r->slot[i].wire) b += r->slot[i].n * sizeof(uint16_t);
    return b;
}

long gt_dist_reducer_buckets(const gt_dist_reducer *r) { return r->n_buckets; }

static void round_reset(slot_t *s) {
    s->posted = s->n;
    s->last_ready = SIZE_MAX;
    s->n_req = 0;
}

/* Starts the in-place sum of grads[lo, hi) (in pieces of at most INT_MAX/2
 * elements); with compression, of their bfloat16 copy in wire[lo, hi). */
static void post(slot_t *s, size_t lo, size_t hi) {
    if (s->wire) gt_bf16_from_floats(s->wire + lo, s->grads + lo, hi - lo);
    for (size_t off = lo; off < hi; off += INT_MAX / 2) {
        size_t len = hi - off < INT_MAX / 2 ? hi - off : INT_MAX / 2;
        if (s->n_req == s->cap_req) {
            int cap = s->cap_req ? 2 * s->cap_req : 16;
            MPI_Request *nr = gt_alloc(sizeof(MPI_Request) * (size_t)cap);
            if (s->n_req) memcpy(nr, s->req, sizeof(MPI_Request) * (size_t)s->n_req);
            gt_free(s->req);
            s->req = nr;
            s->cap_req = cap;
        }
        if (s->wire)
            COMM_TIMED(gt_dist_iallreduce_in_place(s->wire + off, (int)len, MPI_UINT16_T, s->owner->bf16_sum,
                                                   gt_dist_grad_comm(), &s->req[s->n_req]));
        else
            COMM_TIMED(gt_dist_iallreduce_sum_floats(s->grads + off, (int)len, gt_dist_grad_comm(), &s->req[s->n_req]));
        s->n_req++;
        s->owner->n_buckets++;
    }
    s->posted = lo;
}

static slot_t *slot_of(gt_dist_reducer *r, const gt_net *net) {
    for (int i = 0; r && i < r->n_slots; i++)
        if (r->slot[i].net == net) return &r->slot[i];
    return NULL;
}

static void grads_ready(const gt_net *net, size_t offset, void *arg) {
    slot_t *s = slot_of(arg, net);
    GT_ASSERT(s, "gradient reducer: net %s is not attached", net->name);
    if (offset >= s->last_ready || offset > s->n)
        gt_panic("net %s: gradients at offset %zu were reported final after offset %zu (backward ran twice "
                 "before one optimizer step with the overlapped reducer on; disable grads_ready for the "
                 "first backward)",
                 s->net->name, offset, s->last_ready);
    s->last_ready = offset;
    /* offset 0: the whole buffer is final, nothing is left to wait for */
    if (s->posted > offset && (s->posted - offset >= s->owner->bucket_floats || offset == 0)) post(s, offset, s->posted);
}

/* The progress hook: every bucket in flight gets a MPI_Testall. */
static void progress(void *arg) {
    gt_dist_reducer *r = arg;
    for (int i = 0; i < r->n_slots; i++) {
        slot_t *s = &r->slot[i];
        if (!s->n_req) continue;
        int done = 0;
        COMM_TIMED(MPI_CHECK(MPI_Testall(s->n_req, s->req, &done, MPI_STATUSES_IGNORE)));
    }
}

gt_progress gt_dist_reducer_progress(gt_dist_reducer *r) {
    gt_progress none = {0}, hook = {progress, r};
    return r && r->overlap && gt_dist_size() > 1 ? hook : none;
}

void gt_dist_reducer_attach(gt_dist_reducer *r, gt_net *net) {
    GT_ASSERT(r->n_slots < MAX_SLOTS, "gradient reducer: more than %d networks", MAX_SLOTS);
    GT_ASSERT(net->grads, "gradient reducer: net %s is not finalized", net->name);
    slot_t *s = &r->slot[r->n_slots++];
    memset(s, 0, sizeof *s);
    s->owner = r;
    s->net = net;
    s->grads = net->grads;
    s->n = net->n_params;
    if (r->compress) s->wire = gt_alloc(sizeof(uint16_t) * (s->n ? s->n : 1));
    round_reset(s);
}

gt_grads_ready gt_dist_reducer_hook(gt_dist_reducer *r) {
    gt_grads_ready none = {0}, hook = {grads_ready, r};
    return r && r->overlap && gt_dist_size() > 1 ? hook : none;
}

void gt_dist_reduce_grads(gt_net *net, void *arg) {
    gt_dist_reducer *r = arg;
    int world = gt_dist_size();
    float *buf = net->grads;
    size_t n = net->n_params;
    slot_t *s = slot_of(r, net);
    GT_ASSERT(s, "gradient reducer: net %s is not attached", net->name);
    if (world == 1) {
        round_reset(s);
        return;
    }
    /* what is not on its way yet (plain mode: all of it, one call), then wait for everything */
    if (s->posted > 0) post(s, 0, s->posted);
    COMM_TIMED(gt_dist_wait(s->n_req, s->req, "the gradient allreduce of network", net->name));
    round_reset(s);
    const float w = (float)world;
    if (s->wire) /* back from bfloat16 and divided, in one pass */
        for (size_t i = 0; i < n; i++) buf[i] = gt_bf16_to_float(s->wire[i]) / w;
    else
        for (size_t i = 0; i < n; i++) buf[i] /= w;
}

/* ---- synchronized batch norm -------------------------------------------- */

static void bn_sum(float *buf, int n, void *arg) {
    (void)arg;
    MPI_Request q;
    COMM_TIMED(MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &q));
               gt_dist_wait(1, &q, "the synchronized batch norm's allreduce", NULL));
}

void gt_dist_sync_bn(gt_net *net, int on) {
    if (on && gt_dist_size() > 1)
        net->bn_sync = (gt_bn_sync){bn_sum, NULL, gt_dist_size()};
    else
        net->bn_sync = (gt_bn_sync){NULL, NULL, 1};
}
