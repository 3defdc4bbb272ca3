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
 * Every failure gt_fatal()s with one line naming the HDF5 file, the dataset or
 * attribute, what was being done and HDF5's own reason (the library's
 * automatic error-stack printing is turned off). */
#ifndef GENTRAIN_IO_H
#define GENTRAIN_IO_H

#include <stddef.h>
#include <stdint.h>

#define GT_H5_MAX_RANK 8

typedef struct gt_h5 gt_h5;

/* Creates (or truncates) a file for writing. */
gt_h5 *gt_h5_create(const char *path);
/* Opens an existing file, read-only or read-write; a missing file or one that
 * is not HDF5 gt_fatal()s saying which. */
gt_h5 *gt_h5_open(const char *path, int writable);
/* Flushes and closes (NULL is a no-op). Errors in closing are fatal: data may be lost. */
void gt_h5_close(gt_h5 *f);
/* Pushes buffered data to the file (e.g. after each sample grid of a long run). */
void gt_h5_flush(gt_h5 *f);
const char *gt_h5_path(const gt_h5 *f);
/* 1 = the file is an HDF5 file that can be opened (no messages), 0 otherwise. */
int gt_h5_is_hdf5(const char *path);

/* 1 if an object (group or dataset) exists at name, 0 if not (also when a
 * group on the way is missing or is not a group). */
int gt_h5_exists(gt_h5 *f, const char *name);
/* 1 if name is a dataset. */
int gt_h5_is_dataset(gt_h5 *f, const char *name);
/* Creates a group (and its parents); an existing group is fine. */
void gt_h5_make_group(gt_h5 *f, const char *name);

/* Shape of a dataset: writes up to GT_H5_MAX_RANK dims (dims may be NULL),
 * returns the rank. A missing dataset gt_fatal()s. */
int gt_h5_shape(gt_h5 *f, const char *name, int *dims);
/* Number of elements of a dataset. */
int64_t gt_h5_numel(gt_h5 *f, const char *name);
/* 1 if the dataset carries the Fletcher32 checksum. */
int gt_h5_checksummed(gt_h5 *f, const char *name);

/* Write data [dims[0], ..., dims[rank-1]] (dims may be NULL when rank is 0). */
void gt_h5_write_floats(gt_h5 *f, const char *name, const float *data, int rank, const int *dims);
void gt_h5_write_int64(gt_h5 *f, const char *name, const int64_t *data, int rank, const int *dims);
/* Read a dataset whose rank and dims must match exactly (else a message naming
 * the file, the dataset and both shapes); float datasets read as float
 * (float64 files are converted), integer datasets as int64. */
void gt_h5_read_floats(gt_h5 *f, const char *name, float *data, int rank, const int *dims);
void gt_h5_read_int64(gt_h5 *f, const char *name, int64_t *data, int rank, const int *dims);

/* Attributes. obj: NULL, "" or "/" = the root; else a group or dataset path. */
int gt_h5_has_attr(gt_h5 *f, const char *obj, const char *key);
void gt_h5_set_attr_str(gt_h5 *f, const char *obj, const char *key, const char *value);
void gt_h5_set_attr_int64(gt_h5 *f, const char *obj, const char *key, int64_t value);
void gt_h5_set_attr_double(gt_h5 *f, const char *obj, const char *key, double value);
/* The string (malloc'd, gt_free it); a missing attribute or another type gt_fatal()s. */
char *gt_h5_get_attr_str(gt_h5 *f, const char *obj, const char *key);
int64_t gt_h5_get_attr_int64(gt_h5 *f, const char *obj, const char *key);
double gt_h5_get_attr_double(gt_h5 *f, const char *obj, const char *key);

/* Names of the datasets under a group, relative to it and sorted by name
 * (byte order; recursive = 1 descends into subgroups, giving "sub/name").
 * Returns the count; *names is an array of strings, free with gt_h5_free_names.
 * group NULL, "" or "/" = the root. */
int gt_h5_list(gt_h5 *f, const char *group, int recursive, char ***names);
void gt_h5_free_names(char **names, int n);

#endif
