/* Networks from config sections (darknet's .cfg idea on INI):
 *
 *   [generator]
 *   layer1 = dense out=12544 bias=false
 *   layer2 = batchnorm
 *   layer3 = leakyrelu slope=0.2
 *   layer4 = reshape shape=256x7x7
 *
 * Every key of the section named "layer" followed by a number is a layer;
 * layers are taken in increasing number order (gaps allowed). Other keys of
 * the section belong to other readers and are left alone. A layer line is a
 * kind followed by opt=value words; options not given take the defaults of
 * gt_layer_spec_default(). Errors name file, line, key, the line and what is
 * allowed. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gentrain/config.h"
#include "gentrain/core.h"
#include "gentrain/model.h"
#include "gentrain/nn.h"

typedef enum { OPT_INT, OPT_BOOL, OPT_FLOAT, OPT_SHAPE } opt_type;

typedef struct {
    const char *name;
    opt_type type;
    size_t offset;     /* into gt_layer_spec */
    double min, max;   /* for OPT_INT and OPT_FLOAT; max is inclusive unless max_open */
    int max_open;
    int required;
    const char *form;  /* how the value looks, for messages */
} opt_desc;

#define OPT_OUT {"out", OPT_INT, offsetof(gt_layer_spec, out), 1, 1 << 30, 0, 1, "N"}
#define OPT_KERNEL {"kernel", OPT_INT, offsetof(gt_layer_spec, kernel), 1, 1 << 16, 0, 1, "K"}
#define OPT_STRIDE {"stride", OPT_INT, offsetof(gt_layer_spec, stride), 1, 1 << 16, 0, 0, "S"}
#define OPT_PAD {"pad", OPT_INT, offsetof(gt_layer_spec, pad), 0, 1 << 16, 0, 0, "P"}
#define OPT_OUTPAD {"output_pad", OPT_INT, offsetof(gt_layer_spec, output_pad), 0, 1 << 16, 0, 0, "Q"}
#define OPT_BIAS {"bias", OPT_BOOL, offsetof(gt_layer_spec, bias), 0, 1, 0, 0, "true|false"}
#define OPT_END {NULL, OPT_INT, 0, 0, 0, 0, 0, NULL}

typedef struct {
    const char *name;
    gt_layer_kind kind;
    int flatten;
    opt_desc opts[7];
} kind_desc;

static const kind_desc kinds[] = {
    {"dense", GT_DENSE, 0, {OPT_OUT, OPT_BIAS, OPT_END}},
    {"conv2d", GT_CONV2D, 0, {OPT_OUT, OPT_KERNEL, OPT_STRIDE, OPT_PAD, OPT_BIAS, OPT_END}},
    {"convt2d", GT_CONVT2D, 0, {OPT_OUT, OPT_KERNEL, OPT_STRIDE, OPT_PAD, OPT_OUTPAD, OPT_BIAS, OPT_END}},
    {"batchnorm",
     GT_BATCHNORM,
     0,
     {{"eps", OPT_FLOAT, offsetof(gt_layer_spec, eps), 0, 1, 0, 0, "a number in (0, 1]"},
      {"momentum", OPT_FLOAT, offsetof(gt_layer_spec, momentum), 0, 1, 0, 0, "a number in [0, 1]"},
      OPT_END}},
    {"relu", GT_RELU, 0, {OPT_END}},
    {"leakyrelu",
     GT_LEAKYRELU,
     0,
     {{"slope", OPT_FLOAT, offsetof(gt_layer_spec, slope), 0, 1e6, 0, 0, "a number >= 0"}, OPT_END}},
    {"tanh", GT_TANH, 0, {OPT_END}},
    {"sigmoid", GT_SIGMOID, 0, {OPT_END}},
    {"dropout",
     GT_DROPOUT,
     0,
     {{"p", OPT_FLOAT, offsetof(gt_layer_spec, p), 0, 1, 1, 0, "a number in [0, 1)"}, OPT_END}},
    {"reshape",
     GT_RESHAPE,
     0,
     {{"shape", OPT_SHAPE, offsetof(gt_layer_spec, reshape), 0, 0, 0, 1, "CxHxW or N"}, OPT_END}},
    {"flatten", GT_RESHAPE, 1, {OPT_END}},
};
#define N_KINDS ((int)(sizeof kinds / sizeof kinds[0]))

/* Where a layer line came from, for messages. */
typedef struct {
    const char *where, *section, *key, *value;
} line_ctx;

_Noreturn static void line_error(const line_ctx *c, const char *fmt, const char *a, const char *b) {
    char reason[1024];
    snprintf(reason, sizeof reason, fmt, a, b);
    gt_fatal("%s: [%s] %s = \"%s\": %s", c->where, c->section, c->key, c->value, reason);
}

static void list_options(const kind_desc *k, char *buf, size_t cap) {
    buf[0] = '\0';
    if (!k->opts[0].name) {
        snprintf(buf, cap, "%s takes no options", k->name);
        return;
    }
    snprintf(buf, cap, "options of %s:", k->name);
    for (const opt_desc *o = k->opts; o->name; o++) {
        size_t n = strlen(buf);
        snprintf(buf + n, cap - n, " %s=%s", o->name, o->form);
    }
}

static int parse_int(const char *s, long *v) {
    if (!*s || isspace((unsigned char)*s)) return 0;
    char *end;
    errno = 0;
    *v = strtol(s, &end, 10);
    return !errno && !*end;
}

static int parse_float(const char *s, double *v) {
    if (!*s || isspace((unsigned char)*s)) return 0;
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return !errno && !*end && isfinite(*v);
}

/* "CxHxW" -> {C,H,W}; "N" -> {N,1,1}. */
static int parse_shape(const char *s, gt_shape *out) {
    long d[3];
    int n = 0;
    const char *p = s;
    for (;;) {
        if (n == 3 || !isdigit((unsigned char)*p)) return 0;
        char *end;
        errno = 0;
        d[n] = strtol(p, &end, 10);
        if (errno || d[n] < 1 || d[n] > (1l << 30)) return 0;
        n++;
        p = end;
        if (*p == '\0') break;
        if (*p != 'x') return 0;
        p++;
    }
    if (n == 2) return 0;
    if (n == 1) d[1] = d[2] = 1;
    out->c = (int)d[0];
    out->h = (int)d[1];
    out->w = (int)d[2];
    return 1;
}

static int parse_bool_word(const char *s) {
    static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) return 1;
        if (strcasecmp(s, no[i]) == 0) return 0;
    }
    return -1;
}

/* Parses one layer line into a spec; errors name the line. */
static gt_layer_spec parse_layer(const line_ctx *c) {
    /* Split into words (copy, since we cut it). */
    size_t len = strlen(c->value);
    char *buf = gt_alloc(len + 1);
    memcpy(buf, c->value, len + 1);
    char *words[64];
    int nw = 0;
    for (char *p = buf; *p;) {
        while (*p && isspace((unsigned char)*p)) *p++ = '\0';
        if (!*p) break;
        if (nw == 64) line_error(c, "too many words (at most %s)", "64", "");
        words[nw++] = p;
        while (*p && !isspace((unsigned char)*p)) p++;
    }
    char kinds_list[512] = "";
    for (int i = 0; i < N_KINDS; i++) {
        size_t n = strlen(kinds_list);
        snprintf(kinds_list + n, sizeof kinds_list - n, "%s%s", i ? ", " : "", kinds[i].name);
    }
    if (nw == 0) line_error(c, "empty layer; expected KIND opt=value ... with KIND one of: %s", kinds_list, "");
    const kind_desc *k = NULL;
    for (int i = 0; i < N_KINDS; i++)
        if (strcmp(words[0], kinds[i].name) == 0) k = &kinds[i];
    if (!k) line_error(c, "unknown layer kind \"%s\"; kinds: %s", words[0], kinds_list);

    gt_layer_spec spec = gt_layer_spec_default(k->kind);
    spec.kind = k->kind;
    if (k->flatten) spec.reshape = (gt_shape){0, 0, 0};
    int given[8] = {0};
    char opts[512];
    list_options(k, opts, sizeof opts);
    for (int w = 1; w < nw; w++) {
        char *eq = strchr(words[w], '=');
        if (!eq || eq == words[w]) line_error(c, "\"%s\" is not opt=value; %s", words[w], opts);
        *eq = '\0';
        const char *name = words[w], *val = eq + 1;
        int oi = -1;
        for (int i = 0; k->opts[i].name; i++)
            if (strcmp(k->opts[i].name, name) == 0) oi = i;
        if (oi < 0) line_error(c, "unknown option \"%s\"; %s", name, opts);
        const opt_desc *o = &k->opts[oi];
        if (given[oi]) line_error(c, "option %s given twice", name, "");
        given[oi] = 1;
        char *field = (char *)&spec + o->offset;
        char expected[160];
        snprintf(expected, sizeof expected, "%s=%s: expected %s", name, val, o->form);
        switch (o->type) {
        case OPT_INT: {
            long v;
            if (!parse_int(val, &v) || v < (long)o->min || v > (long)o->max) {
                if (o->min >= 1)
                    snprintf(expected, sizeof expected, "%s=%s: expected an integer >= %ld", name, val,
                             (long)o->min);
                else
                    snprintf(expected, sizeof expected, "%s=%s: expected an integer >= 0", name, val);
                line_error(c, "%s", expected, "");
            }
            int iv = (int)v;
            memcpy(field, &iv, sizeof iv);
            break;
        }
        case OPT_BOOL: {
            int b = parse_bool_word(val);
            if (b < 0) line_error(c, "%s", expected, "");
            memcpy(field, &b, sizeof b);
            break;
        }
        case OPT_FLOAT: {
            double v;
            int ok = parse_float(val, &v) && v >= o->min && (o->max_open ? v < o->max : v <= o->max);
            if (ok && strcmp(name, "eps") == 0) ok = v > 0;
            if (!ok) line_error(c, "%s", expected, "");
            float fv = (float)v;
            memcpy(field, &fv, sizeof fv);
            break;
        }
        case OPT_SHAPE: {
            gt_shape s;
            if (!parse_shape(val, &s)) line_error(c, "%s", expected, "");
            memcpy(field, &s, sizeof s);
            break;
        }
        }
    }
    for (int i = 0; k->opts[i].name; i++)
        if (k->opts[i].required && !given[i]) {
            char need[64];
            snprintf(need, sizeof need, "%s=%s", k->opts[i].name, k->opts[i].form);
            line_error(c, "missing option %s; %s", need, opts);
        }
    gt_free(buf);
    return spec;
}

typedef struct {
    long num;
    const char *key;
} layer_key;

static int cmp_layer_key(const void *a, const void *b) {
    long x = ((const layer_key *)a)->num, y = ((const layer_key *)b)->num;
    return (x > y) - (x < y);
}

void gt_net_from_config(gt_net *net, gt_config *cfg, const char *section, gt_shape in) {
    GT_CHECK(net && cfg && section, "gt_net_from_config: NULL argument");
    int n = gt_config_keys(cfg, section, NULL, 0);
    const char **keys = gt_alloc((size_t)(n + 1) * sizeof *keys);
    gt_config_keys(cfg, section, keys, n);
    layer_key *layers = gt_alloc((size_t)(n + 1) * sizeof *layers);
    int nl = 0;
    for (int i = 0; i < n; i++) {
        const char *k = keys[i];
        if (strncmp(k, "layer", 5) != 0 || !k[5]) continue;
        const char *d = k + 5;
        if (strspn(d, "0123456789") != strlen(d)) continue;
        errno = 0;
        long num = strtol(d, NULL, 10);
        if (errno || num < 1 || num > 1000000)
            gt_fatal("%s: [%s] %s: layer numbers are positive integers: layer1, layer2, ...",
                     gt_config_where(cfg, section, k), section, k);
        for (int j = 0; j < nl; j++)
            if (layers[j].num == num)
                gt_fatal("%s: [%s] %s: layer number %ld is already given by %s (%s)",
                         gt_config_where(cfg, section, k), section, k, num, layers[j].key,
                         gt_config_where(cfg, section, layers[j].key));
        layers[nl].num = num;
        layers[nl].key = k;
        nl++;
    }
    if (nl == 0)
        gt_fatal("config section [%s] has no layers: expected keys layer1, layer2, ... such as "
                 "\"layer1 = dense out=256\"",
                 section);
    qsort(layers, (size_t)nl, sizeof *layers, cmp_layer_key);

    gt_net_init(net, section, in);
    for (int i = 0; i < nl; i++) {
        line_ctx c;
        c.section = section;
        c.key = layers[i].key;
        c.value = gt_config_str(cfg, section, c.key, NULL);
        c.where = gt_config_where(cfg, section, c.key);
        gt_layer_spec spec = parse_layer(&c);
        const char *err = gt_net_add(net, spec);
        if (err) gt_fatal("%s: [%s] %s = \"%s\": %s", c.where, section, c.key, c.value, err);
    }
    gt_free(layers);
    gt_free(keys);
}
