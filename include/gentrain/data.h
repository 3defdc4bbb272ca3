/* data: datasets in memory, the distributed sampler, sources of examples
 * (in memory or read on demand), the loader that reads ahead, batches as floats. */
#ifndef GENTRAIN_DATA_H
#define GENTRAIN_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "gentrain/core.h"

/* 2-D toy mixtures: n points, point i drawn from (seed, i):
 * ring8: 8 Gaussians evenly on a circle of radius 1;
 * grid25: 25 Gaussians on a 5x5 grid with spacing 2, centred on 0. */
typedef enum { GT_TOY_NONE = -1, GT_TOY_RING8, GT_TOY_GRID25 } gt_toy_kind;
extern const char *const gt_toy_names[]; /* "ring8", "grid25", NULL */

/* A dataset: n examples of one shape, either 8-bit pixels (IDX images) or
 * float values (2-D toy points), with optional integer labels. */
typedef struct {
    int64_t n;
    gt_shape shape;
    uint8_t *pixels;  /* n * size, or NULL */
    float *values;    /* n * size, or NULL */
    int *labels;      /* n, or NULL */
    int n_classes;
    gt_toy_kind toy;  /* the mixture the points come from, GT_TOY_NONE for images */
    float toy_std;
    char source[256]; /* file or generator it came from, for messages */
} gt_dataset;

/* Where the data comes from ([data] in a config). */
typedef enum { GT_DATA_IDX, GT_DATA_TOY, GT_DATA_HDF5 } gt_data_kind;
typedef enum { GT_CACHE_NONE, GT_CACHE_SHARD } gt_data_cache;
typedef struct {
    gt_data_kind kind;
    const char *train_images, *train_labels, *test_images, *test_labels; /* IDX */
    int64_t limit;                                                       /* IDX, HDF5: first N training examples, 0 = all */
    gt_toy_kind toy;                                                     /* toy */
    int64_t n, n_test;
    float std;
    const char *path;   /* HDF5: a gentrain-dataset file (src/io/dataset.c) */
    int shuffle_local;  /* HDF5: each rank shuffles within its own contiguous shard (gt_sampler_init_shard) */
    int cache;          /* HDF5: gt_data_cache; GT_CACHE_SHARD keeps the rank's shard in memory (needs shuffle_local) */
    int readahead;      /* batches the reader thread reads ahead (0: read on the training thread when needed) */
    const char *dump_reads; /* [debug]: the training file's reader appends every row it reads to PATH.rank<R> */
} gt_data_opts;

/* The training and test sets in memory (IDX files, toy mixtures); they must
 * agree in shape and in their labels' range (an error names the files).
 * HDF5 files are not loaded: they are read on demand (gt_source, src/io). */
gt_status gt_data_load(const gt_data_opts *o, uint64_t seed, gt_dataset *train, gt_dataset *test);

/* IDX (gzipped or plain) images [n, rows, cols] of uint8, and optionally the
 * matching labels file (NULL = none). limit > 0 keeps the first `limit` (more
 * than the file holds is an error). Errors name the file and what is wrong. */
gt_status gt_idx_load(gt_dataset *ds, const char *images_path, const char *labels_path, int64_t limit);

void gt_toy_make(gt_dataset *ds, gt_toy_kind kind, int64_t n, float std, uint64_t seed);
/* Mixture centres: writes up to cap (x,y) pairs, returns the count. */
int gt_toy_centres(gt_toy_kind kind, float *xy, int cap);

void gt_dataset_free(gt_dataset *ds);

/* Pixel scaling for images: [-1,1] (GAN, tanh output) or [0,1] (VAE). */
typedef enum { GT_SCALE_SIGNED, GT_SCALE_UNIT } gt_pixel_scale;

/* Gather examples idx[0..B) into x [B, size] as floats (values copied as they
 * are for float datasets) and their labels (if labels != NULL). */
void gt_dataset_batch(const gt_dataset *ds, const int64_t *idx, int B, gt_pixel_scale scale, float *x, int *labels);
/* n pixels as floats, as gt_dataset_batch scales them: p/127.5 - 1 (SIGNED)
 * or p/255 (UNIT), bit for bit. */
void gt_pixels_to_floats(const uint8_t *px, size_t n, gt_pixel_scale scale, float *x);

/* Dynamic binarization: x[i] in [0,1] becomes 1 with probability x[i]; the
 * draw for local example i is keyed by (seed, step, example0 + i*stride). */
void gt_binarize(float *x, int B, size_t size, uint64_t seed, uint64_t step, uint64_t example0, uint64_t stride);

/* The distributed sampler. The epoch's permutation of [0, n) comes from
 * (seed, epoch). Each step consumes world*batch consecutive entries of it;
 * rank r takes entries r, r+world, r+2*world, ... of those (a strided slice),
 * so local example i has position r + i*world in the global batch.
 * steps_per_epoch = floor(n / (world*batch)); the remainder of each epoch's
 * permutation is skipped (it differs from epoch to epoch). */
typedef struct {
    int64_t n, steps_per_epoch;
    int batch, rank, world;
    uint64_t seed;
    int64_t epoch, cursor; /* cursor = steps taken in this epoch */
    uint32_t *perm;        /* the current epoch's permutation of [0, n_shard) (local mode: of the shard, from lo) */
    int local;             /* gt_sampler_init_shard */
    int64_t lo, n_shard;   /* local mode: this rank's shard [lo, lo + n_shard) */
} gt_sampler;

void gt_sampler_init(gt_sampler *s, int64_t n, int batch, int rank, int world, uint64_t seed);
/* Local mode: rank r owns the contiguous shard [r*n/world, (r+1)*n/world)
 * (gt_sampler_shard) and takes batch consecutive entries of that shard's
 * permutation per step; steps_per_epoch = floor(floor(n/world) / batch), the
 * rest of each shard's permutation is skipped. The shard's permutation is
 * the global one's Fisher-Yates keyed by global example indices (position i
 * of the shard draws with index lo + i), so with world = 1 this sampler is
 * exactly gt_sampler_init's. With more ranks the run depends on the number
 * of ranks: examples never move between ranks, and a step's global batch
 * takes `batch` examples from every shard. */
void gt_sampler_init_shard(gt_sampler *s, int64_t n, int batch, int rank, int world, uint64_t seed);
/* Rank r's shard of n examples over world ranks: [*lo, *lo + *count). */
void gt_sampler_shard(int64_t n, int rank, int world, int64_t *lo, int64_t *count);
/* dst = a sampler at src's position (its own permutation buffer). */
void gt_sampler_copy(gt_sampler *dst, const gt_sampler *src);
/* Position the sampler at (epoch, cursor), e.g. on resume. */
void gt_sampler_seek(gt_sampler *s, int64_t epoch, int64_t cursor);
/* Writes this rank's next batch of dataset indices into idx[batch] and advances
 * (to the next epoch when this one is used up). */
void gt_sampler_next(gt_sampler *s, int64_t *idx);
void gt_sampler_free(gt_sampler *s);

/* ---- sources: examples by global index ----------------------------------
 * What the training loop reads from: it asks for a batch of global indices
 * (the sampler's) and gets floats. The in-memory datasets (gt_dataset: IDX,
 * toy) and gentrain-dataset HDF5 files read on demand (src/io/dataset.c;
 * this module knows nothing of HDF5) sit behind the same table of
 * functions. A source is used by one thread at a time. */
typedef struct gt_source gt_source;
typedef struct {
    /* Examples idx[0..B) (each in [0, n)) as floats x[B, size], pixels scaled
     * as gt_pixels_to_floats, float values copied; labels[B] if not NULL
     * (-1 for a source without labels). */
    gt_status (*read)(gt_source *s, const int64_t *idx, int B, gt_pixel_scale scale, float *x, int *labels);
    /* The raw pixels of examples [first, first + count) into px[count, size]
     * and their labels (NULL: not wanted). NULL for sources of float values. */
    gt_status (*read_range)(gt_source *s, int64_t first, int64_t count, uint8_t *px, int *labels);
    void (*close)(gt_source *s);
} gt_source_ops;

struct gt_source {
    const gt_source_ops *ops;
    void *impl;
    int64_t n;           /* examples; indices are in [0, n) */
    gt_shape shape;
    int has_labels;
    int n_classes;       /* labels are in [0, n_classes) (0 without labels) */
    int points;          /* 1: float values (2-D toy points); 0: 8-bit pixels */
    gt_toy_kind toy;     /* the mixture the points come from, GT_TOY_NONE for images */
    int64_t rows_read;   /* examples read from the source's storage so far */
    int64_t resident;    /* bytes of examples the source holds in memory */
    char name[256];      /* the file or generator, for messages */
};

/* An in-memory dataset as a source; the source takes *ds over (ds is left empty). */
gt_source *gt_source_memory(gt_dataset *ds);
/* Reads a batch (see gt_source_ops.read); an index outside [0, n) panics (a bug). */
gt_status gt_source_read(gt_source *s, const int64_t *idx, int B, gt_pixel_scale scale, float *x, int *labels);
/* Replaces *s by an in-memory copy of its examples [first, first + count)
 * (the rank's shard), read with read_range in pieces of about `piece_bytes`;
 * the copy keeps the original's n, so global indices stay valid, and reading
 * an index outside the range panics (a bug). The original is closed. */
gt_status gt_source_cache(gt_source **s, int64_t first, int64_t count, size_t piece_bytes);
void gt_source_close(gt_source *s);

/* ---- the loader: batches read ahead on a reader thread ------------------
 * The loader follows a copy of the training sampler (the order is
 * deterministic, so the next batches' indices are known) and, with
 * depth > 0, a reader thread (pthreads) keeps up to `depth` batches read
 * ahead of the one the training loop holds, converted to floats; with depth 0
 * each batch is read when asked for, on the caller's thread.
 *
 * Only the reader thread calls the source while the loader exists (and
 * unpaused), so a file-backed source does all its I/O on that thread. A
 * caller that uses the same I/O library itself (HDF5 for checkpoints,
 * samples and metrics) pauses the loader around it: gt_loader_pause returns
 * once the reader thread has finished its current read and waits, so that
 * at any time at most one thread is inside HDF5 whether or not the library
 * was built thread-safe. The reader thread blocks every signal (they go to
 * the training thread). */
typedef struct gt_loader gt_loader;
/* count: the batches the run will take (no read beyond them); s: the
 * training sampler, positioned at the next batch; labels: read labels too. */
void gt_loader_new(gt_source *src, const gt_sampler *s, int64_t count, int depth, gt_pixel_scale scale, int labels,
                   gt_loader **out);
/* The next batch, whose indices idx[batch] the caller's sampler just gave
 * (they must be the loader's: a mismatch panics, a bug): *x [batch, size]
 * and *labels (NULL without labels), valid until the next call. A read error
 * is returned here. */
gt_status gt_loader_next(gt_loader *l, const int64_t *idx, float **x, int **labels);
/* The batch after the one the caller holds (waiting for its read): [batch,
 * size], the same memory the next gt_loader_next returns; NULL when there is
 * none (the last batch, or depth 0) or its read failed (the next
 * gt_loader_next returns that error). Not while paused. */
float *gt_loader_peek(gt_loader *l);
void gt_loader_pause(gt_loader *l);  /* NULL is a no-op; pausing twice is once */
void gt_loader_resume(gt_loader *l); /* NULL or not paused: a no-op */
/* Follows s from its position on (e.g. after a divergence rollback sought
 * the training sampler back), with `count` batches left: the batches read
 * ahead and the one the caller holds are dropped (waiting for a read under
 * way to finish). A paused loader stays paused; NULL is a no-op. s must have
 * the loader's batch size. */
void gt_loader_reseek(gt_loader *l, const gt_sampler *s, int64_t count);
/* Seconds the caller spent in gt_loader_next: waiting for batches the reader
 * thread had not finished (depth 0: reading them). */
double gt_loader_wait_seconds(const gt_loader *l);
/* Bytes the loader holds: its batch buffers. */
size_t gt_loader_bytes(const gt_loader *l);
/* Stops and joins the reader thread (after its current read); NULL is a no-op. */
void gt_loader_free(gt_loader *l);

#endif
