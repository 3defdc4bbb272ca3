/* io: a small HDF5 layer (src/io/h5.c is the only code that includes <hdf5.h>).
 *
 * Files are opaque handles. Names are HDF5 paths relative to the root ("a/b/c"
 * or "/a/b/c"); groups on the way are created as needed when writing.
 *
 * Datasets: float32 (H5T_IEEE_F32LE) and int64 (H5T_STD_I64LE), in PyTorch
 * (row-major) shapes, rank 0..GT_H5_MAX_RANK. Every dataset with at least
 * one element and rank >= 1 is chunked (one chunk for small datasets, chunks
 * of up to ~4 MiB split along the outer dimensions otherwise) and carries
 * HDF5's Fletcher32 checksum, which HDF5 verifies on every read; scalar and
 * zero-size datasets cannot be chunked and are stored contiguous, without a
 * checksum. Writing a name that already exists replaces that dataset.
 * Reads check the element class and the exact shape.
 *
 * Attributes: scalar int64, double and strings (variable-length UTF-8, so that
 * h5py gives a str), on the root (obj NULL, "" or "/") or on any group or
 * dataset. Setting an attribute that exists replaces it.
 *
 * Every function that can fail returns a gt_status; the error names the HDF5
 * file, the dataset or attribute, what was being done and HDF5's own reason
 * (the library's automatic error-stack printing is turned off). After a
 * failure, give the file up with gt_h5_discard(). */
#ifndef GENTRAIN_IO_H
#define GENTRAIN_IO_H

#include <stddef.h>
#include <stdint.h>

#include "gentrain/core.h"
#include "gentrain/data.h"

#define GT_H5_MAX_RANK 8

typedef struct gt_h5 gt_h5;

/* Creates (or truncates) a file for writing. */
gt_status gt_h5_create(const char *path, gt_h5 **out);
/* Opens an existing regular file, read-only or read-write. */
gt_status gt_h5_open(const char *path, int writable, gt_h5 **out);
/* Opens a file that many processes read at once and none writes (a dataset):
 * read-only and without HDF5's file lock, which parallel file systems often
 * cannot take (as HDF5_USE_FILE_LOCKING=FALSE does for every file). */
gt_status gt_h5_open_shared(const char *path, gt_h5 **out);
/* Flushes and closes (NULL is a no-op); an error means data may be lost. */
gt_status gt_h5_close(gt_h5 *f);
/* Closes ignoring errors (after a failure; NULL is a no-op). */
void gt_h5_discard(gt_h5 *f);
/* Releases the HDF5 library's global state (H5close) once every file is
 * closed; main() calls it at the end. */
void gt_h5_library_close(void);
const char *gt_h5_path(const gt_h5 *f);
/* 1 if path is an HDF5 file (1.10 format) whose superblock says that a
 * writer has it open: left so by a writer that was killed before closing it
 * (HDF5 then refuses to open it; `h5clear -s` removes the mark). */
int gt_h5_marked_open(const char *path);
/* 1 = a regular file that HDF5 recognizes (no messages), 0 otherwise. */
int gt_h5_is_hdf5(const char *path);

/* *yes = 1 if an object (group or dataset) exists at name (0 also when a
 * group on the way is missing or is not a group). */
gt_status gt_h5_exists(gt_h5 *f, const char *name, int *yes);
gt_status gt_h5_is_dataset(gt_h5 *f, const char *name, int *yes);
/* Creates a group (and its parents); an existing group is fine. */
gt_status gt_h5_make_group(gt_h5 *f, const char *name);

/* Rank and dims (up to GT_H5_MAX_RANK; dims may be NULL) of a dataset. */
gt_status gt_h5_shape(gt_h5 *f, const char *name, int *rank, int *dims);
/* *yes = 1 if the dataset carries the Fletcher32 checksum. */
gt_status gt_h5_checksummed(gt_h5 *f, const char *name, int *yes);

/* Write data [dims[0], ..., dims[rank-1]] (dims may be NULL when rank is 0). */
gt_status gt_h5_write_floats(gt_h5 *f, const char *name, const float *data, int rank, const int *dims);
gt_status gt_h5_write_int64(gt_h5 *f, const char *name, const int64_t *data, int rank, const int *dims);
/* Read a dataset whose rank and dims must match exactly (else an error naming
 * the file, the dataset and both shapes); float datasets read as float
 * (float64 files are converted), integer datasets as int64. */
gt_status gt_h5_read_floats(gt_h5 *f, const char *name, float *data, int rank, const int *dims);
gt_status gt_h5_read_int64(gt_h5 *f, const char *name, int64_t *data, int rank, const int *dims);

/* Attributes. obj: NULL, "" or "/" = the root; else a group or dataset path. */
gt_status gt_h5_has_attr(gt_h5 *f, const char *obj, const char *key, int *yes);
gt_status gt_h5_set_attr_str(gt_h5 *f, const char *obj, const char *key, const char *value);
/* A fixed-length string (h5py gives bytes): stored in the object header, which
 * the 1.10 format checksums, unlike variable-length strings, whose bytes live
 * in HDF5's unchecked global heap (checkpoints use this one). */
gt_status gt_h5_set_attr_str_fixed(gt_h5 *f, const char *obj, const char *key, const char *value);
gt_status gt_h5_set_attr_int64(gt_h5 *f, const char *obj, const char *key, int64_t value);
gt_status gt_h5_set_attr_double(gt_h5 *f, const char *obj, const char *key, double value);
/* *out is gt_alloc'd (gt_free it); a missing attribute or another type is an error. */
gt_status gt_h5_get_attr_str(gt_h5 *f, const char *obj, const char *key, char **out);
gt_status gt_h5_get_attr_int64(gt_h5 *f, const char *obj, const char *key, int64_t *out);
gt_status gt_h5_get_attr_double(gt_h5 *f, const char *obj, const char *key, double *out);

/* Names of the datasets under a group, relative to it and sorted by name
 * (byte order; recursive = 1 descends into subgroups, giving "sub/name").
 * *names is an array of *n strings, free with gt_h5_free_names.
 * group NULL, "" or "/" = the root. */
gt_status gt_h5_list(gt_h5 *f, const char *group, int recursive, char ***names, int *n);
void gt_h5_free_names(char **names, int n);

/* Deletes an object (dataset or group) if it exists. */
gt_status gt_h5_delete(gt_h5 *f, const char *name);

/* Inspection of any HDF5 file. Attribute names of an object (sorted; free
 * with gt_h5_free_names); an attribute's type: 'i' integer, 'f' float,
 * 's' string, '?' anything else or not a single value. */
gt_status gt_h5_attr_names(gt_h5 *f, const char *obj, char ***names, int *n);
gt_status gt_h5_attr_type(gt_h5 *f, const char *obj, const char *key, char *type);
/* *yes = 1 if the attribute exists and is a single string. */
gt_status gt_h5_attr_is_string(gt_h5 *f, const char *obj, const char *key, int *yes);
/* A dataset's element type as text: "float32", "int64", "table{step:int64, loss:float64}". */
gt_status gt_h5_dtype(gt_h5 *f, const char *name, char *buf, size_t cap);
/* Reads a whole dataset back (which verifies its Fletcher32 checksum, if it
 * has one); an error says why it does not read. */
gt_status gt_h5_verify(gt_h5 *f, const char *name);

/* Extendible tables, stored by column: group/<col> is a 1-D dataset with an
 * unlimited length (chunked, checksummed), int64 for the first n_int columns
 * of a row and float64 for the others; values come as doubles. All columns
 * of a group have the same length: a column that a row lacks gets its fill
 * value (NaN; 0 for int64), and a new column is back-filled with it, so
 * h5py/pandas read a table as {name: f[group][name][:] for name in f[group]}.
 * cols[0] is the key column (e.g. "step") whose length is the row count. */
gt_status gt_h5_table_append(gt_h5 *f, const char *group, int ncols, const char *const *cols, int n_int,
                             const double *values);
gt_status gt_h5_table_rows(gt_h5 *f, const char *group, const char *key, int64_t *rows);
/* One column as doubles: out[rows]. */
gt_status gt_h5_table_column(gt_h5 *f, const char *group, const char *col, double *out);
/* Keeps the first `rows` rows of every column of the group. */
gt_status gt_h5_table_truncate(gt_h5 *f, const char *group, int64_t rows);

/* ---- rows of a large dataset, read on demand (src/io/dataset.c) ----------
 * A dataset whose first dimension indexes rows (examples), read a few rows
 * at a time without reading the rest. The handle keeps the dataset open.
 * Unfiltered chunks get no chunk cache: HDF5 then reads only the selected
 * rows' bytes from the file; filtered chunks (compressed, checksummed) must
 * be read and decoded whole, and a cache of cache_chunks of them is kept.
 * A handle is used by one thread at a time; in a thread-safe HDF5 it may be
 * another thread than the one that opened the file. */
typedef struct gt_h5_rows gt_h5_rows;
typedef struct {
    int rank;
    int64_t dims[GT_H5_MAX_RANK];
    char dtype[64];        /* gt_h5_dtype's name: "uint8", "int64", ... */
    int64_t chunk_rows;    /* rows per chunk (0: not chunked) */
    size_t chunk_bytes;    /* bytes per chunk (0: not chunked) */
    size_t cache_bytes;    /* the chunk cache this handle keeps */
    char filters[96];      /* "none", "gzip", "shuffle+gzip", ... */
} gt_h5_rows_info;
gt_status gt_h5_rows_open(gt_h5 *f, const char *name, size_t cache_chunks, gt_h5_rows **out, gt_h5_rows_info *info);
/* rows[0..n) (any order, repeats allowed) into out[n, row elements]: uint8
 * elements as bytes, integers as int64. */
gt_status gt_h5_rows_read_u8(gt_h5_rows *r, const int64_t *rows, int n, uint8_t *out);
gt_status gt_h5_rows_read_i64(gt_h5_rows *r, const int64_t *rows, int n, int64_t *out);
/* rows [first, first + count) */
gt_status gt_h5_rows_range_u8(gt_h5_rows *r, int64_t first, int64_t count, uint8_t *out);
gt_status gt_h5_rows_range_i64(gt_h5_rows *r, int64_t first, int64_t count, int64_t *out);
void gt_h5_rows_close(gt_h5_rows *r);
/* 1 if this HDF5 library was built thread-safe (H5is_library_threadsafe). */
int gt_h5_threadsafe(void);

/* ---- gentrain-dataset files (src/io/dataset.c) -----------------------------
 * The training images of a dataset file (README "Datasets": /images uint8
 * [N,C,H,W], /labels int64 [N], the test set in /test or the last
 * test_split rows) as sources of examples (data.h). Everything is checked
 * before any training: the format attribute, shapes, types, C in {1, 3},
 * train and test agreeing in shape and labels, every label in
 * [0, n_classes); each problem is one error naming the file and what is
 * wrong. Both sources share the file, opened read-only; the training
 * source's reads count its rows (rows_read) and, with dump_reads, append
 * each row read (int64) to that file. limit > 0: the first limit training
 * examples. */
gt_status gt_dataset_file_open(const char *path, int64_t limit, const char *dump_reads, gt_source **train,
                               gt_source **test);
/* What the file's images are like, for the log: "chunks of 85 examples
 * (1.0 MiB), filters none, chunk cache 0 B". */
const char *gt_dataset_file_layout(const gt_source *s);

/* ---- PNG (src/io/png.c is the only code that includes <png.h>) ---------- */

/* Writes 8-bit pixels [h][w][channels] (channels 1 = gray, 3 = RGB) to path,
 * atomically: a temporary file next to it is written, then renamed over it,
 * so a failure (disk full) leaves the earlier picture as it was. */
gt_status gt_png_write(const char *path, const uint8_t *pixels, int w, int h, int channels);
/* A grid of n images [n, c, h, w] (c = 1 or 3) with values in [lo, hi]
 * mapped linearly to 0..255 (clamped), `cols` per row (0 = about square),
 * 2 pixels of gap. */
gt_status gt_png_write_grid(const char *path, const float *images, int n, int c, int h, int w, float lo, float hi,
                            int cols);
/* A scatter plot of n 2-D points (x, y pairs) on a size x size white square,
 * the view centred on 0 with half-width `extent`; `ref` (n_ref points, may be
 * NULL) drawn in red under them (e.g. the toy mixture's centres). */
gt_status gt_png_write_scatter(const char *path, const float *xy, int n, const float *ref, int n_ref, float extent,
                               int size);

#endif
