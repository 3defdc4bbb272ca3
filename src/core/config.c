/* config: INI files parsed with libinih, plus "section.key=value" overrides.
 *
 * The configuration is a list of entries (section, key, value, where, used)
 * in the order they were first given. `where` is "FILE:LINE" for a key from a
 * file, "command line" for an override and "default" for a default a getter
 * fell back to (recorded so that gt_config_text() shows the resolved
 * configuration). Besides the entries, the config remembers every key the
 * program asked about (the "known" keys): gt_config_check_unused() lists them
 * as the keys allowed in a section when it meets one nobody read.
 *
 * inih's handler does not get line numbers in the Debian build, so the text is
 * fed to ini_parse_stream() by our own line reader, which counts the lines:
 * the handler runs while the reader's current line is being parsed.
 *
 * Keys and sections are case-sensitive. Lines have no length limit: inih's
 * line buffer holds INI_MAX_LINE (200) bytes in Debian's build, so the reader
 * hands inih a long line with its value replaced by a short token and the
 * handler puts the real value back. Errors found while inih parses are
 * recorded in the parse state and returned once it has stopped.
 * Continuation lines (an indented line after a key) are rejected: inih would
 * otherwise read an indented "key = value" as part of the previous value. */
#include "gentrain/config.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <ini.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "gentrain/core.h"

typedef struct {
    char *section, *key, *value;
    char *where; /* "FILE:LINE", "command line" or "default" */
    int line;    /* line in the file, 0 if not from a file */
    int used;
} cfg_entry;

typedef struct {
    char *section, *key;
} cfg_known;

struct gt_config {
    char *origin; /* the file (or text) the config came from, for messages */
    cfg_entry *e;
    int n, cap;
    cfg_known *known;
    int n_known, cap_known;
};

/* ---- storage ---------------------------------------------------------- */

gt_config *gt_config_new(void) {
    gt_config *cfg = gt_alloc(sizeof *cfg);
    cfg->origin = gt_strdup("config");
    return cfg;
}

void gt_config_free(gt_config *cfg) {
    if (!cfg) return;
    for (int i = 0; i < cfg->n; i++) {
        gt_free(cfg->e[i].section);
        gt_free(cfg->e[i].key);
        gt_free(cfg->e[i].value);
        gt_free(cfg->e[i].where);
    }
    for (int i = 0; i < cfg->n_known; i++) {
        gt_free(cfg->known[i].section);
        gt_free(cfg->known[i].key);
    }
    gt_free(cfg->e);
    gt_free(cfg->known);
    gt_free(cfg->origin);
    gt_free(cfg);
}

/* Grows an array of `*cap` elements of `size` bytes to hold at least `need`. */
static void *grow(void *p, int *cap, int need, size_t size) {
    if (need <= *cap) return p;
    int ncap = *cap ? *cap * 2 : 16;
    while (ncap < need) ncap *= 2;
    void *q = gt_alloc((size_t)ncap * size);
    if (p) memcpy(q, p, (size_t)*cap * size);
    gt_free(p);
    *cap = ncap;
    return q;
}

static cfg_entry *find(gt_config *cfg, const char *section, const char *key) {
    for (int i = 0; i < cfg->n; i++)
        if (strcmp(cfg->e[i].section, section) == 0 && strcmp(cfg->e[i].key, key) == 0) return &cfg->e[i];
    return NULL;
}

static cfg_entry *add(gt_config *cfg, const char *section, const char *key, const char *value, const char *where,
                      int line) {
    cfg->e = grow(cfg->e, &cfg->cap, cfg->n + 1, sizeof *cfg->e);
    cfg_entry *e = &cfg->e[cfg->n++];
    e->section = gt_strdup(section);
    e->key = gt_strdup(key);
    e->value = gt_strdup(value);
    e->where = gt_strdup(where);
    e->line = line;
    e->used = 0;
    return e;
}

/* Remembers that the program asked about [section] key. */
static void know(gt_config *cfg, const char *section, const char *key) {
    for (int i = 0; i < cfg->n_known; i++)
        if (strcmp(cfg->known[i].section, section) == 0 && strcmp(cfg->known[i].key, key) == 0) return;
    cfg->known = grow(cfg->known, &cfg->cap_known, cfg->n_known + 1, sizeof *cfg->known);
    cfg->known[cfg->n_known].section = gt_strdup(section);
    cfg->known[cfg->n_known].key = gt_strdup(key);
    cfg->n_known++;
}

/* ---- parsing ---------------------------------------------------------- */

#define LONG_TOKEN "\x01long-value\x01" /* stands for a long line's value while inih reads the line */

typedef struct {
    gt_config *cfg;
    const char *p;        /* start of the next line */
    const char *line;     /* start of the current line */
    int lineno;           /* current line (1-based) */
    const char *last_section, *last_key; /* the previous handler call's key */
    char *long_value;     /* the value a LONG_TOKEN stands for on the current line */
    gt_status failed;     /* an error recorded while inih was parsing */
} parse_state;

/* Copies the line starting at `line` (without its newline) into buf, cut at cap. */
static void line_text(const char *line, char *buf, size_t cap) {
    size_t n = strcspn(line, "\r\n");
    if (n >= cap) n = cap - 1;
    memcpy(buf, line, n);
    buf[n] = '\0';
}

static gt_status syntax_error(const gt_config *cfg, int lineno, const char *line) {
    char buf[256] = "";
    if (line) line_text(line, buf, sizeof buf);
    return GT_ERROR("%s:%d: syntax error in \"%s\": expected \"[section]\", \"key = value\" or a comment (; or #)",
                    cfg->origin, lineno, buf);
}

/* Catches what inih would report only after going on parsing (so that a bad
 * section header is not followed by confusing errors about the keys below). */
static gt_status check_line(const gt_config *cfg, int lineno, const char *line, size_t len) {
    size_t i = 0;
    if (lineno == 1 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) i = 3; /* UTF-8 BOM */
    while (i < len && isspace((unsigned char)line[i])) i++;
    if (i == len || line[i] == ';' || line[i] == '#') return GT_OK;
    if (line[i] == '[') {
        if (!memchr(line + i, ']', len - i)) return syntax_error(cfg, lineno, line);
        return GT_OK;
    }
    if (!memchr(line + i, '=', len - i) && !memchr(line + i, ':', len - i)) return syntax_error(cfg, lineno, line);
    if (memchr(line, '\x01', len)) return GT_ERROR("%s:%d: control character \\x01 in the line", cfg->origin, lineno);
    return GT_OK;
}

/* fgets-style reader over the text, counting lines. A line too long for
 * inih's buffer is handed over as "KEY = LONG_TOKEN" (a comment or section
 * line that long is an error). Returns NULL at the end or on an error. */
static char *reader(char *str, int num, void *stream) {
    parse_state *st = stream;
    if (st->failed || *st->p == '\0') return NULL;
    const char *nl = strchr(st->p, '\n');
    size_t len = nl ? (size_t)(nl - st->p) + 1 : strlen(st->p);
    st->line = st->p;
    st->lineno++;
    gt_free(st->long_value);
    st->long_value = NULL;
    if ((st->failed = check_line(st->cfg, st->lineno, st->p, len)) != GT_OK) return NULL;
    if (len + 3 > (size_t)num) { /* inih needs room for '\r', '\n' and '\0' */
        const char *eq = st->p + strcspn(st->p, "=:");
        size_t klen = (size_t)(eq - st->p);
        if (eq >= st->p + len || klen + sizeof LONG_TOKEN + 4 > (size_t)num) {
            st->failed = GT_ERROR("%s:%d: line of %zu characters is too long for a section, comment or key (at most "
                                  "%d before the '=')",
                                  st->cfg->origin, st->lineno, len, num - (int)sizeof LONG_TOKEN - 4);
            return NULL;
        }
        /* the value as inih would give it: trimmed, an inline comment (" ;") cut off */
        const char *v = eq + 1, *vend = st->p + len;
        while (v < vend && isspace((unsigned char)*v)) v++;
        for (const char *c = v; c < vend; c++)
            if (*c == ';' && c > v && isspace((unsigned char)c[-1])) {
                vend = c;
                break;
            }
        while (vend > v && isspace((unsigned char)vend[-1])) vend--;
        st->long_value = gt_alloc((size_t)(vend - v) + 1);
        memcpy(st->long_value, v, (size_t)(vend - v));
        memcpy(str, st->p, klen + 1);
        snprintf(str + klen + 1, (size_t)num - klen - 1, " %s\n", LONG_TOKEN);
    } else {
        memcpy(str, st->p, len);
        str[len] = '\0';
    }
    st->p += len;
    return str;
}

/* 1 if v would not read back as itself from a written "key = v" line: a ';'
 * at its start or after a space starts an inline comment there. */
static int reads_as_comment(const char *v) {
    for (const char *c = v; *c; c++)
        if (*c == ';' && (c == v || isspace((unsigned char)c[-1]))) return 1;
    return 0;
}

static int handler(void *user, const char *section, const char *name, const char *value) {
    parse_state *st = user;
    gt_config *cfg = st->cfg;
    char where[1024];
    snprintf(where, sizeof where, "%s:%d", cfg->origin, st->lineno);
    if (!value) value = "";
    if (st->long_value && !strcmp(value, LONG_TOKEN)) value = st->long_value;
    if (section[0] == '\0') {
        st->failed = GT_ERROR("%s: key \"%s\" comes before any [section]; put it under one, e.g. [run]", where, name);
        return 0;
    }
    cfg_entry *old = find(cfg, section, name);
    if (old) {
        int indented = st->line && (st->line[0] == ' ' || st->line[0] == '\t');
        if (indented && st->last_key && strcmp(st->last_section, section) == 0 && strcmp(st->last_key, name) == 0) {
            char text[256];
            line_text(st->line, text, sizeof text);
            st->failed = GT_ERROR("%s: indented line \"%s\" continues the value of [%s] %s (%s); continuation lines "
                                  "are not supported: remove the indentation or put the value on one line",
                                  where, text, section, name, old->where);
            return 0;
        }
        st->failed = GT_ERROR("%s: duplicate key [%s] %s (already set at %s); give each key once", where, section,
                              name, old->where);
        return 0;
    }
    if (reads_as_comment(value)) { /* "key =;x": inih keeps ";x", but "key = ;x" is a comment */
        st->failed = GT_ERROR("%s: [%s] %s = \"%s\": a value may not begin with ';' (gentrain writes the resolved "
                              "config as \"key = value\", where it would read as a comment)",
                              where, section, name, value);
        return 0;
    }
    cfg_entry *e = add(cfg, section, name, value, where, st->lineno);
    st->last_section = e->section;
    st->last_key = e->key;
    return 1;
}

static gt_status parse_into(gt_config *cfg, const char *text) {
    parse_state st = {.cfg = cfg, .p = text};
    int rc = ini_parse_stream(reader, &st, handler, &st);
    gt_free(st.long_value);
    if (st.failed) return st.failed;
    if (rc == 0) return GT_OK;
    if (rc < 0) return GT_ERROR("%s: cannot parse (inih error %d: out of memory)", cfg->origin, rc);
    /* rc = line of the first syntax error (check_line catches most before). */
    const char *line = text;
    for (int i = 1; i < rc && line; i++) {
        line = strchr(line, '\n');
        if (line) line++;
    }
    return syntax_error(cfg, rc, line);
}

gt_status gt_config_parse(const char *text, const char *origin, gt_config **out) {
    GT_ASSERT(text && origin && out, "gt_config_parse: NULL argument");
    *out = NULL;
    gt_config *cfg = gt_config_new();
    gt_free(cfg->origin);
    cfg->origin = gt_strdup(origin);
    gt_status st = parse_into(cfg, text);
    if (st) {
        gt_config_free(cfg);
        return st;
    }
    *out = cfg;
    return GT_OK;
}

gt_status gt_config_load(const char *path, gt_config **out) {
    GT_ASSERT(path && out, "gt_config_load: NULL argument");
    *out = NULL;
    /* a FIFO would block the open until someone writes it; a directory or
     * device is no config either */
    struct stat sb;
    if (stat(path, &sb) != 0) return GT_ERROR("cannot open config file %s: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return GT_ERROR("config file %s is not a regular file (a %s): give an INI file", path,
                        S_ISDIR(sb.st_mode) ? "directory" : S_ISFIFO(sb.st_mode) ? "FIFO or pipe" : "device or socket");
    FILE *f = fopen(path, "rb");
    if (!f) return GT_ERROR("cannot open config file %s: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = gt_alloc(cap);
    for (;;) {
        if (n + 1 >= cap) {
            char *nb = gt_alloc(cap * 2);
            memcpy(nb, buf, n);
            gt_free(buf);
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0) break;
    }
    int read_error = ferror(f), e = errno;
    if (fclose(f) != 0 && !read_error) read_error = 1, e = errno;
    gt_status st = GT_OK;
    buf[n] = '\0';
    if (read_error)
        st = GT_ERROR("cannot read config file %s: %s", path, strerror(e));
    else if (strlen(buf) != n)
        st = GT_ERROR("config file %s contains a NUL byte; is it a text file?", path);
    else
        st = gt_config_parse(buf, path, out);
    gt_free(buf);
    return st;
}

/* ---- overrides -------------------------------------------------------- */

static int is_name(const char *s, size_t n) {
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '-')) return 0;
    return 1;
}

static void trim(const char **s, size_t *n) {
    while (*n && isspace((unsigned char)**s)) (*s)++, (*n)--;
    while (*n && isspace((unsigned char)(*s)[*n - 1])) (*n)--;
}

gt_status gt_config_override(gt_config *cfg, const char *assignment) {
    GT_ASSERT(cfg && assignment, "gt_config_override: NULL argument");
    const char *form = "expected section.key=value, e.g. train.steps=1000";
    const char *eq = strchr(assignment, '=');
    if (!eq) return GT_USAGE_ERROR("command line: bad setting \"%s\": no '='; %s", assignment, form);
    const char *dot = memchr(assignment, '.', (size_t)(eq - assignment));
    if (!dot)
        return GT_USAGE_ERROR("command line: bad setting \"%s\": no '.' between section and key; %s", assignment, form);
    const char *sec = assignment, *key = dot + 1, *val = eq + 1;
    size_t nsec = (size_t)(dot - assignment), nkey = (size_t)(eq - key), nval = strlen(val);
    trim(&sec, &nsec);
    trim(&key, &nkey);
    trim(&val, &nval);
    if (nsec == 0) return GT_USAGE_ERROR("command line: bad setting \"%s\": empty section; %s", assignment, form);
    if (nkey == 0) return GT_USAGE_ERROR("command line: bad setting \"%s\": empty key; %s", assignment, form);
    if (!is_name(sec, nsec) || !is_name(key, nkey))
        return GT_USAGE_ERROR("command line: bad setting \"%s\": section and key may contain only letters, digits, "
                              "'_' and '-'; %s",
                              assignment, form);
    if (memchr(val, '\n', nval) || memchr(val, '\r', nval) || memchr(val, '\x01', nval))
        return GT_USAGE_ERROR("command line: bad setting \"%s\": the value contains a line break or control character",
                              assignment);
    char *s = gt_alloc(nsec + 1), *k = gt_alloc(nkey + 1), *v = gt_alloc(nval + 1);
    memcpy(s, sec, nsec);
    memcpy(k, key, nkey);
    memcpy(v, val, nval);
    if (reads_as_comment(v)) {
        gt_free(s);
        gt_free(k);
        gt_free(v);
        return GT_USAGE_ERROR("command line: bad setting \"%s\": a ';' at the start of the value or after a space "
                              "would read as a comment in the config gentrain writes (config.ini, checkpoints)",
                              assignment);
    }
    cfg_entry *e = find(cfg, s, k);
    if (e && !strcmp(e->where, "command line"))
        gt_warn("command line: %s.%s is given twice (\"%s\", then \"%s\"): the last one is used", s, k, e->value, v);
    if (e) {
        gt_free(e->value);
        gt_free(e->where);
        e->value = v;
        e->where = gt_strdup("command line");
        e->line = 0;
    } else {
        add(cfg, s, k, v, "command line", 0);
        gt_free(v);
    }
    gt_free(s);
    gt_free(k);
    return GT_OK;
}

/* ---- getters ---------------------------------------------------------- */

int gt_config_has(gt_config *cfg, const char *section, const char *key) {
    know(cfg, section, key);
    return find(cfg, section, key) != NULL;
}

const char *gt_config_where(gt_config *cfg, const char *section, const char *key) {
    cfg_entry *e = find(cfg, section, key);
    return e ? e->where : "(not set)";
}

const char *gt_config_origin(const gt_config *cfg) { return cfg->origin; }

/* The entry for a key, marked used; a default is recorded when the key is
 * absent; a missing required key (def == NULL) is an error. */
static gt_status lookup(gt_config *cfg, const char *section, const char *key, const char *def, cfg_entry **out) {
    GT_ASSERT(cfg && section && key, "gt_config: NULL argument");
    know(cfg, section, key);
    cfg_entry *e = find(cfg, section, key);
    if (!e) {
        if (!def)
            return GT_ERROR("%s: missing required key [%s] %s (add it to the file or give %s.%s=... on the command "
                            "line)",
                            cfg->origin, section, key, section, key);
        e = add(cfg, section, key, def, "default", 0);
    }
    e->used = 1;
    *out = e;
    return GT_OK;
}

/* A setting given on the command line that is wrong is a usage error (exit 2). */
static gt_status entry_code(const cfg_entry *e) {
    return !strcmp(e->where, "command line") ? GT_ERR_USAGE : GT_ERR;
}

static gt_status bad_value(const cfg_entry *e, const char *expected) {
    return gt_error_at(__FILE__, __LINE__, entry_code(e), "%s: [%s] %s = \"%s\": %s", e->where, e->section, e->key,
                       e->value, expected);
}

int gt_config_from_command_line(gt_config *cfg, const char *section, const char *key) {
    cfg_entry *e = find(cfg, section, key);
    return e && entry_code(e) == GT_ERR_USAGE;
}

gt_status gt_config_str(gt_config *cfg, const char *section, const char *key, const char *def, const char **out) {
    cfg_entry *e;
    GT_TRY(lookup(cfg, section, key, def, &e));
    *out = e->value;
    return GT_OK;
}

static void int_range(char *buf, size_t n, long min, long max) {
    if (min == LONG_MIN && max == LONG_MAX)
        snprintf(buf, n, "expected an integer");
    else if (max == LONG_MAX)
        snprintf(buf, n, "expected an integer >= %ld", min);
    else if (min == LONG_MIN)
        snprintf(buf, n, "expected an integer <= %ld", max);
    else
        snprintf(buf, n, "expected an integer in [%ld, %ld]", min, max);
}

gt_status gt_config_int(gt_config *cfg, const char *section, const char *key, long def, long min, long max,
                        long *out) {
    GT_ASSERT(min <= max && def >= min && def <= max, "gt_config_int [%s] %s: default %ld not in [%ld, %ld]",
              section, key, def, min, max);
    char dbuf[32];
    snprintf(dbuf, sizeof dbuf, "%ld", def);
    cfg_entry *e;
    GT_TRY(lookup(cfg, section, key, dbuf, &e));
    long v;
    if (!gt_parse_long(e->value, &v) || v < min || v > max) {
        char msg[128];
        int_range(msg, sizeof msg, min, max);
        return bad_value(e, msg);
    }
    *out = v;
    return GT_OK;
}

void gt_format_double(char *buf, size_t n, double v) {
    char best[40] = "", tmp[40];
    int best_score = 1 << 30;
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) != v) continue;
        int score = (int)strlen(tmp) + (strchr(tmp, 'e') ? 3 : 0);
        if (score < best_score) {
            best_score = score;
            memcpy(best, tmp, sizeof best);
        }
    }
    if (!best[0]) snprintf(best, sizeof best, "%.17g", v);
    snprintf(buf, n, "%s", best);
}

static void float_range(char *buf, size_t n, double min, double max, int min_open) {
    char a[32], b[32];
    gt_format_double(a, sizeof a, min);
    gt_format_double(b, sizeof b, max);
    int lo = min <= -DBL_MAX, hi = max >= DBL_MAX;
    if (lo && hi)
        snprintf(buf, n, "expected a finite number");
    else if (hi)
        snprintf(buf, n, "expected a number %s %s", min_open ? ">" : ">=", a);
    else if (lo)
        snprintf(buf, n, "expected a number <= %s", b);
    else
        snprintf(buf, n, "expected a number in %s%s, %s]", min_open ? "(" : "[", a, b);
}

gt_status gt_config_float(gt_config *cfg, const char *section, const char *key, double def, double min, double max,
                          double *out) {
    GT_ASSERT(min <= max && def >= min && def <= max, "gt_config_float [%s] %s: default %g not in [%g, %g]",
              section, key, def, min, max);
    char dbuf[32];
    gt_format_double(dbuf, sizeof dbuf, def);
    cfg_entry *e;
    GT_TRY(lookup(cfg, section, key, dbuf, &e));
    double v;
    if (!gt_parse_double(e->value, &v) || v < min || v > max) {
        char msg[128];
        float_range(msg, sizeof msg, min, max, 0);
        return bad_value(e, msg);
    }
    *out = v;
    return GT_OK;
}

gt_status gt_config_positive(gt_config *cfg, const char *section, const char *key, double def, double max,
                             double *out) {
    GT_ASSERT(def > 0 && def <= max, "gt_config_positive [%s] %s: default %g not in (0, %g]", section, key, def, max);
    char dbuf[32];
    gt_format_double(dbuf, sizeof dbuf, def);
    cfg_entry *e;
    GT_TRY(lookup(cfg, section, key, dbuf, &e));
    double v;
    if (!gt_parse_double(e->value, &v) || !(v > 0) || v > max) {
        char msg[128];
        float_range(msg, sizeof msg, 0, max, 1);
        return bad_value(e, msg);
    }
    *out = v;
    return GT_OK;
}

gt_status gt_config_bool(gt_config *cfg, const char *section, const char *key, int def, int *out) {
    cfg_entry *e;
    GT_TRY(lookup(cfg, section, key, def ? "true" : "false", &e));
    int v = gt_parse_bool(e->value);
    if (v < 0) return bad_value(e, "expected true or false (also yes/no, on/off, 1/0)");
    *out = v;
    return GT_OK;
}

gt_status gt_config_choice(gt_config *cfg, const char *section, const char *key, const char *def,
                           const char *const *choices, int *out) {
    GT_ASSERT(choices && choices[0], "gt_config_choice [%s] %s: no choices", section, key);
    cfg_entry *e;
    GT_TRY(lookup(cfg, section, key, def, &e));
    for (int i = 0; choices[i]; i++)
        if (strcmp(e->value, choices[i]) == 0) {
            *out = i;
            return GT_OK;
        }
    char msg[1024] = "expected one of: ";
    for (int i = 0; choices[i]; i++) {
        size_t len = strlen(msg);
        snprintf(msg + len, sizeof msg - len, "%s%s", i ? ", " : "", choices[i]);
    }
    return bad_value(e, msg);
}

int gt_config_keys(gt_config *cfg, const char *section, const char **keys, int cap) {
    int n = 0;
    for (int i = 0; i < cfg->n; i++) {
        if (strcmp(cfg->e[i].section, section) != 0) continue;
        if (keys && n < cap) keys[n] = cfg->e[i].key;
        n++;
    }
    return n;
}

/* ---- checking and output ---------------------------------------------- */

/* A growing string. */
typedef struct {
    char *s;
    size_t n, cap;
} sbuf;

static void sb_add(sbuf *b, const char *s) {
    size_t len = strlen(s);
    if (b->n + len + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 256;
        while (ncap < b->n + len + 1) ncap *= 2;
        char *ns = gt_alloc(ncap);
        if (b->s) memcpy(ns, b->s, b->n);
        gt_free(b->s);
        b->s = ns;
        b->cap = ncap;
    }
    memcpy(b->s + b->n, s, len);
    b->n += len;
    b->s[b->n] = '\0';
}

static int levenshtein(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    if (na > 63 || nb > 63) return 99;
    int row[64];
    for (size_t j = 0; j <= nb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= na; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= nb; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[nb];
}

/* Appends "; did you mean X?" for the closest candidate within distance 2. */
static void suggest(sbuf *b, const char *word, const char *const *cands, int n) {
    int best = 3;
    const char *pick = NULL;
    for (int i = 0; i < n; i++) {
        int d = levenshtein(word, cands[i]);
        if (d < best) best = d, pick = cands[i];
    }
    if (pick) {
        sb_add(b, "; did you mean ");
        sb_add(b, pick);
        sb_add(b, "?");
    }
}

gt_status gt_config_check_unused(gt_config *cfg) {
    for (int i = 0; i < cfg->n; i++) {
        cfg_entry *e = &cfg->e[i];
        if (e->used) continue;
        const char **cands = gt_alloc((size_t)(cfg->n_known + 1) * sizeof *cands);
        int nc = 0;
        sbuf msg = {0};
        for (int j = 0; j < cfg->n_known; j++)
            if (strcmp(cfg->known[j].section, e->section) == 0) cands[nc++] = cfg->known[j].key;
        if (nc > 0) {
            sb_add(&msg, "unknown key [");
            sb_add(&msg, e->section);
            sb_add(&msg, "] ");
            sb_add(&msg, e->key);
            sb_add(&msg, "; keys allowed in [");
            sb_add(&msg, e->section);
            sb_add(&msg, "]: ");
            for (int j = 0; j < nc; j++) {
                if (j) sb_add(&msg, ", ");
                sb_add(&msg, cands[j]);
            }
            suggest(&msg, e->key, cands, nc);
        } else {
            /* Known sections, each once, in the order they were asked about. */
            for (int j = 0; j < cfg->n_known; j++) {
                int seen = 0;
                for (int k = 0; k < nc; k++) seen |= strcmp(cands[k], cfg->known[j].section) == 0;
                if (!seen) cands[nc++] = cfg->known[j].section;
            }
            sb_add(&msg, "unknown section [");
            sb_add(&msg, e->section);
            sb_add(&msg, "] (key ");
            sb_add(&msg, e->key);
            sb_add(&msg, ")");
            sb_add(&msg, "; known sections: ");
            if (nc == 0) sb_add(&msg, "(none)");
            for (int j = 0; j < nc; j++) {
                if (j) sb_add(&msg, ", ");
                sb_add(&msg, cands[j]);
            }
            suggest(&msg, e->section, cands, nc);
        }
        gt_status st = gt_error_at(__FILE__, __LINE__, entry_code(e), "%s: %s", e->where, msg.s);
        gt_free(msg.s);
        gt_free(cands);
        return st;
    }
    return GT_OK;
}

char *gt_config_text(gt_config *cfg) {
    sbuf b = {0};
    sb_add(&b, "");
    for (int i = 0; i < cfg->n; i++) {
        const char *sec = cfg->e[i].section;
        int first = 1;
        for (int j = 0; j < i; j++) first &= strcmp(cfg->e[j].section, sec) != 0;
        if (!first) continue;
        if (b.n) sb_add(&b, "\n");
        sb_add(&b, "[");
        sb_add(&b, sec);
        sb_add(&b, "]\n");
        for (int j = i; j < cfg->n; j++) {
            if (strcmp(cfg->e[j].section, sec) != 0) continue;
            sb_add(&b, cfg->e[j].key);
            sb_add(&b, " = ");
            sb_add(&b, cfg->e[j].value);
            sb_add(&b, "\n");
        }
    }
    return b.s;
}
