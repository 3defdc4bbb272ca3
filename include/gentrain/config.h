/* config: INI files (parsed with inih) plus "section.key=value" overrides.
 *
 * Read only at the program's edge (src/app/options.c turns a config into
 * the option structs the modules take). Every getter records that a key was
 * used, and records the default it fell back to, so that (1)
 * gt_config_check_unused() can reject unknown keys naming their file and line
 * and the keys that are allowed there, and (2) gt_config_text() gives the
 * fully resolved configuration. Bad values are errors naming the file, line,
 * key, value and what is allowed. */
#ifndef GENTRAIN_CONFIG_H
#define GENTRAIN_CONFIG_H

#include <stddef.h>

#include "gentrain/core.h"

typedef struct gt_config gt_config;

gt_config *gt_config_new(void);
/* Reads an INI file; a missing file or a syntax error names file and line. */
gt_status gt_config_load(const char *path, gt_config **out);
/* Parses INI text (e.g. the config stored in a checkpoint); `origin` names it in messages. */
gt_status gt_config_parse(const char *text, const char *origin, gt_config **out);
/* Applies one "section.key=value" override from the command line (a bad
 * one is a usage error; the same key given twice is a warning). */
gt_status gt_config_override(gt_config *cfg, const char *assignment);
void gt_config_free(gt_config *cfg);
/* The file (or text) the config came from. */
const char *gt_config_origin(const gt_config *cfg);

int gt_config_has(gt_config *cfg, const char *section, const char *key);
/* def == NULL: the key is required. */
gt_status gt_config_str(gt_config *cfg, const char *section, const char *key, const char *def, const char **out);
gt_status gt_config_int(gt_config *cfg, const char *section, const char *key, long def, long min, long max,
                        long *out);
gt_status gt_config_float(gt_config *cfg, const char *section, const char *key, double def, double min, double max,
                          double *out);
/* A number in (0, max]. */
gt_status gt_config_positive(gt_config *cfg, const char *section, const char *key, double def, double max,
                             double *out);
gt_status gt_config_bool(gt_config *cfg, const char *section, const char *key, int def, int *out);
/* One of the NULL-terminated choices; *out = its index. */
gt_status gt_config_choice(gt_config *cfg, const char *section, const char *key, const char *def,
                           const char *const *choices, int *out);
/* Keys of a section in the order they were given; returns the count. */
int gt_config_keys(gt_config *cfg, const char *section, const char **keys, int cap);
/* 1 if the key was set on the command line: its errors are usage errors
 * (exit 2, GT_ERR_USAGE), like every bad value or unknown key given there. */
int gt_config_from_command_line(gt_config *cfg, const char *section, const char *key);
/* "FILE:LINE" or "command line" or "default", for messages. */
const char *gt_config_where(gt_config *cfg, const char *section, const char *key);
/* An error naming the first key or section nobody read. */
gt_status gt_config_check_unused(gt_config *cfg);
/* The resolved configuration as INI text (gt_free it). */
char *gt_config_text(gt_config *cfg);
/* The shortest "%g" text that reads back as v ("10", "1e-3", "0.0002"). */
void gt_format_double(char *buf, size_t n, double v);

#endif
