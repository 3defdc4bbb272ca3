/* config: INI files (parsed with inih) plus "section.key=value" overrides.
 *
 * Every getter records that a key was used, and records the default it fell
 * back to, so that (1) gt_config_check_unused() can reject unknown keys
 * naming their file and line and the keys that are allowed there, and (2)
 * gt_config_text() gives the fully resolved configuration. Bad values
 * gt_fatal() naming the file, line, key, value and what is allowed. */
#ifndef GENTRAIN_CONFIG_H
#define GENTRAIN_CONFIG_H

#include <stddef.h>

typedef struct gt_config gt_config;

gt_config *gt_config_new(void);
/* Reads an INI file; a missing file or a syntax error gt_fatal()s naming file and line. */
gt_config *gt_config_load(const char *path);
/* Parses INI text (e.g. the config stored in a checkpoint); `origin` names it in messages. */
gt_config *gt_config_parse(const char *text, const char *origin);
/* Applies one "section.key=value" override (from the command line). */
void gt_config_override(gt_config *cfg, const char *assignment);
void gt_config_free(gt_config *cfg);

int gt_config_has(gt_config *cfg, const char *section, const char *key);
/* def == NULL: the key is required. */
const char *gt_config_str(gt_config *cfg, const char *section, const char *key, const char *def);
long gt_config_int(gt_config *cfg, const char *section, const char *key, long def, long min, long max);
double gt_config_float(gt_config *cfg, const char *section, const char *key, double def, double min, double max);
int gt_config_bool(gt_config *cfg, const char *section, const char *key, int def);
/* One of the NULL-terminated choices; returns its index. */
int gt_config_choice(gt_config *cfg, const char *section, const char *key, const char *def,
                     const char *const *choices);
/* Keys of a section in the order they were given; returns the count. */
int gt_config_keys(gt_config *cfg, const char *section, const char **keys, int cap);
/* "FILE:LINE" or "command line" or "default", for messages. */
const char *gt_config_where(gt_config *cfg, const char *section, const char *key);
/* Marks a key as used without reading it (e.g. one read by a later stage). */
void gt_config_touch(gt_config *cfg, const char *section, const char *key);
/* gt_fatal() on the first key or section nobody read. */
void gt_config_check_unused(gt_config *cfg);
/* The resolved configuration as INI text (malloc'd; gt_free it). */
char *gt_config_text(gt_config *cfg);

#endif
