/* The run's data (include/gentrain/app.h): the training and test sources
 * that [data] describes, the rank's shard cache, the lines the log gets
 * about them, and the end-of-run account of what each rank read. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "gentrain/app.h"

#define CACHE_PIECE_BYTES ((size_t)64 << 20) /* the shard is read this much at a time */

void gt_human_bytes(double bytes, char *buf, size_t cap) {
    if (bytes >= 1e9) snprintf(buf, cap, "%.2f GB", bytes / 1e9);
    else if (bytes >= 1e6) snprintf(buf, cap, "%.1f MB", bytes / 1e6);
    else snprintf(buf, cap, "%.0f kB", bytes / 1e3);
}

static double physical_memory(void) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page > 0 ? (double)pages * (double)page : 0.0;
}

static gt_status open_file_sources(const gt_options *o, int rank, int world, gt_source **train, gt_source **test) {
    const gt_data_opts *d = &o->data;
    char dump[4200] = "";
    if (d->dump_reads && d->dump_reads[0]) snprintf(dump, sizeof dump, "%s.rank%d", d->dump_reads, rank);
    GT_TRY(gt_dataset_file_open(d->path, d->limit, dump, train, test));
    gt_source *t = *train;
    size_t size = gt_shape_size(t->shape);
    char total[32], per[32];
    gt_human_bytes((double)t->n * (double)size, total, sizeof total);
    gt_info("data: %s: %" PRId64 " train / %" PRId64 " test examples of %dx%dx%d uint8 (%s of training images); %s; "
            "HDF5 %sthread-safe",
            d->path, t->n, (*test)->n, t->shape.c, t->shape.h, t->shape.w, total, gt_dataset_file_layout(t),
            gt_h5_threadsafe() ? "" : "not ");
    if (!d->shuffle_local) {
        gt_human_bytes((double)t->n * (double)size / world, per, sizeof per);
        gt_info("data: shuffle = global: one permutation of all %" PRId64 " examples per epoch; each rank reads from "
                "the file only the rows of its own batches (%s per rank and epoch), none kept",
                t->n, per);
        return GT_OK;
    }
    int64_t lo, count;
    gt_sampler_shard(t->n, rank, world, &lo, &count);
    gt_human_bytes((double)count * (double)size, per, sizeof per);
    if (world > 1)
        gt_info("data: shuffle = local: each rank shuffles only its own contiguous shard (rank 0: examples [%" PRId64
                ", %" PRId64 "), %s); this gives up world-size invariance (the run depends on the number of ranks, "
                "examples never move between ranks, and a global batch takes batch_size examples from every shard: "
                "use a file whose examples are in random order)",
                lo, lo + count, per);
    else
        gt_info("data: shuffle = local on 1 rank: the shard is the whole set, the same run as shuffle = global");
    if (d->cache != GT_CACHE_SHARD) return GT_OK;
    double need = (double)count * (double)size, mem = physical_memory();
    if (mem > 0 && need > 0.8 * mem) {
        char m[32];
        gt_human_bytes(mem, m, sizeof m);
        return GT_ERROR("[data] cache = shard: this rank's shard is %s, more than 80%% of this machine's %s of "
                        "memory (and every rank on the node holds one): use more ranks or nodes, or cache = none",
                        per, m);
    }
    double t0 = gt_now();
    GT_TRY(gt_source_cache(train, lo, count, CACHE_PIECE_BYTES));
    gt_info("data: cache = shard: rank 0 read its shard of %" PRId64 " examples (%s) in %.1f s and keeps it in memory",
            count, per, gt_now() - t0);
    return GT_OK;
}

/* The bytes a dataset in memory holds: pixels (uint8, or floats for toy data) and labels. */
static double dataset_bytes(const gt_dataset *d) {
    return (double)d->n * (double)gt_shape_size(d->shape) * (d->pixels ? 1.0 : (double)sizeof(float)) +
           (d->labels ? (double)d->n * sizeof(int) : 0.0);
}

gt_status gt_run_data_open(const gt_options *o, int rank, int world, gt_source **train, gt_source **test) {
    *train = *test = NULL;
    if (o->data.kind == GT_DATA_HDF5) return open_file_sources(o, rank, world, train, test);
    gt_dataset tr, te;
    GT_TRY(gt_data_load(&o->data, o->seed, &tr, &te));
    /* what every rank holds of the data (the memory account of the model, gt_model_memory, leaves it out) */
    char held[32];
    gt_human_bytes(dataset_bytes(&tr) + dataset_bytes(&te), held, sizeof held);
    gt_info("data: in memory: %" PRId64 " train / %" PRId64 " test examples of %dx%dx%d %s%s: %s on every rank",
            tr.n, te.n, tr.shape.c, tr.shape.h, tr.shape.w, tr.pixels ? "uint8" : "float",
            tr.labels ? " with labels" : "", held);
    *train = gt_source_memory(&tr);
    *test = gt_source_memory(&te);
    return GT_OK;
}

void gt_run_data_report(const gt_source *train, int64_t share, double wait, double loop) {
    int world = gt_dist_size();
    struct rusage ru;
    /* per rank: rows read, peak resident bytes, per mille of the loop spent waiting for data */
    uint64_t mine[3] = {(uint64_t)train->rows_read, 0, loop > 0 ? (uint64_t)(1000.0 * wait / loop + 0.5) : 0};
    if (getrusage(RUSAGE_SELF, &ru) == 0) mine[1] = (uint64_t)ru.ru_maxrss * 1024u; /* Linux: kB */
    uint64_t *all = gt_alloc(sizeof(uint64_t) * 3 * (size_t)world);
    gt_dist_allgather_u64(mine, 3, all);
    char rows[2048] = "", rss[2048] = "", waits[2048] = "";
    size_t nr = 0, nm = 0, nw = 0;
    for (int r = 0; r < world; r++) {
        const char *sep = r ? " " : "";
        if (nr < sizeof rows) nr += (size_t)snprintf(rows + nr, sizeof rows - nr, "%s%" PRIu64, sep, all[3 * r]);
        if (nm < sizeof rss)
            nm += (size_t)snprintf(rss + nm, sizeof rss - nm, "%s%.0f", sep, (double)all[3 * r + 1] / 1e6);
        if (nw < sizeof waits)
            nw += (size_t)snprintf(waits + nw, sizeof waits - nw, "%s%.1f", sep, (double)all[3 * r + 2] / 10.0);
    }
    gt_info("data: examples read per rank: %s (this run's batches: %" PRId64 " per rank); time waiting for batches "
            "(%% of the training loop): %s; peak resident memory per rank (MB): %s",
            rows, share, waits, rss);
    gt_free(all);
}
