/* Layer lines and the registry of layer kinds (include/gentrain/nn.h).
 *
 *   conv2d out=64 kernel=4 stride=2 pad=1
 *
 * A layer line is a kind followed by opt=value words; options not given take
 * their kind's defaults. The kinds and their options come from the
 * descriptors in src/nn/layers/, nothing here names a kind. */
#include "gentrain/nn.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

const gt_layer_kind *gt_layer_kind_find(const char *name) {
    for (int i = 0; name && gt_layer_kinds[i]; i++)
        if (!strcmp(gt_layer_kinds[i]->name, name)) return gt_layer_kinds[i];
    return NULL;
}

int gt_layer_opt_index(const gt_layer_kind *kind, const char *name) {
    for (int i = 0; i < kind->n_opts; i++)
        if (!strcmp(kind->opts[i].name, name)) return i;
    return -1;
}

/* "out=N kernel=K ...", the form of a kind's options, for messages. */
static void option_forms(const gt_layer_kind *k, char *buf, size_t cap) {
    if (k->n_opts == 0) {
        snprintf(buf, cap, "%s takes no options", k->name);
        return;
    }
    size_t n = (size_t)snprintf(buf, cap, "options of %s:", k->name);
    for (int i = 0; i < k->n_opts && n < cap; i++) {
        const gt_layer_opt *o = &k->opts[i];
        const char *form = o->type == GT_OPT_BOOL ? "true|false" : o->type == GT_OPT_SHAPE ? "CxHxW|N" : "";
        if (o->type == GT_OPT_INT || o->type == GT_OPT_FLOAT) form = o->type == GT_OPT_INT ? "N" : "X";
        n += (size_t)snprintf(buf + n, cap - n, " %s=%s%s%s%s", o->name, form, o->def ? " [" : "",
                              o->def ? o->def : "", o->def ? "]" : "");
    }
}

/* What an option accepts, for messages: "an integer >= 1", "a number in [0, 1)". */
static void option_range(const gt_layer_opt *o, char *buf, size_t cap) {
    switch (o->type) {
    case GT_OPT_BOOL: snprintf(buf, cap, "true or false"); return;
    case GT_OPT_SHAPE: snprintf(buf, cap, "CxHxW or N (positive integers)"); return;
    case GT_OPT_INT:
        snprintf(buf, cap, "an integer in [%.0f, %.0f]", o->min, o->max);
        return;
    case GT_OPT_FLOAT:
        if (o->max >= 1e30)
            snprintf(buf, cap, "a number %s %g", o->min_open ? ">" : ">=", o->min);
        else
            snprintf(buf, cap, "a number in %s%g, %g%s", o->min_open ? "(" : "[", o->min, o->max,
                     o->max_open ? ")" : "]");
        return;
    }
}

/* Parses one option value; 1 = fine. */
static int parse_value(const gt_layer_opt *o, const char *s, gt_opt_value *v) {
    switch (o->type) {
    case GT_OPT_INT: {
        long x;
        if (!gt_parse_long(s, &x) || x < o->min || x > o->max) return 0;
        v->i = x;
        return 1;
    }
    case GT_OPT_BOOL: {
        int b = gt_parse_bool(s);
        if (b < 0) return 0;
        v->i = b;
        return 1;
    }
    case GT_OPT_FLOAT: {
        double x;
        if (!gt_parse_double(s, &x)) return 0;
        if (o->min_open ? !(x > o->min) : !(x >= o->min)) return 0;
        if (o->max_open ? !(x < o->max) : !(x <= o->max)) return 0;
        v->f = x;
        return 1;
    }
    case GT_OPT_SHAPE: return gt_parse_shape(s, &v->shape);
    }
    return 0;
}

gt_layer_spec gt_layer_spec_default(const gt_layer_kind *kind) {
    gt_layer_spec s;
    memset(&s, 0, sizeof s);
    s.kind = kind;
    GT_ASSERT(kind && kind->n_opts <= GT_LAYER_MAX_OPTS, "layer kind %s: too many options",
              kind ? kind->name : "(null)");
    for (int i = 0; i < kind->n_opts; i++)
        if (kind->opts[i].def)
            GT_ASSERT(parse_value(&kind->opts[i], kind->opts[i].def, &s.opt[i]),
                      "layer kind %s: the default %s=%s does not parse", kind->name, kind->opts[i].name,
                      kind->opts[i].def);
    return s;
}

gt_status gt_layer_spec_parse(const char *line, gt_layer_spec *spec) {
    char kinds[512] = "";
    for (int i = 0; gt_layer_kinds[i]; i++) {
        size_t n = strlen(kinds);
        snprintf(kinds + n, sizeof kinds - n, "%s%s", i ? ", " : "", gt_layer_kinds[i]->name);
    }
    /* words of the line */
    char buf[1024];
    if (strlen(line) >= sizeof buf) return GT_ERROR("layer line too long (%zu characters)", strlen(line));
    snprintf(buf, sizeof buf, "%s", line);
    char *words[64];
    int nw = 0;
    for (char *p = buf; *p;) {
        while (*p && isspace((unsigned char)*p)) *p++ = '\0';
        if (!*p) break;
        if (nw == 64) return GT_ERROR("too many words (at most 64)");
        words[nw++] = p;
        while (*p && !isspace((unsigned char)*p)) p++;
    }
    if (nw == 0) return GT_ERROR("empty layer; expected KIND opt=value ... with KIND one of: %s", kinds);
    const gt_layer_kind *k = gt_layer_kind_find(words[0]);
    if (!k) return GT_ERROR("unknown layer kind \"%s\"; kinds: %s", words[0], kinds);
    *spec = gt_layer_spec_default(k);
    char forms[512];
    option_forms(k, forms, sizeof forms);
    int given[GT_LAYER_MAX_OPTS] = {0};
    for (int w = 1; w < nw; w++) {
        char *eq = strchr(words[w], '=');
        if (!eq || eq == words[w]) return GT_ERROR("\"%s\" is not opt=value; %s", words[w], forms);
        *eq = '\0';
        const char *name = words[w], *val = eq + 1;
        int i = gt_layer_opt_index(k, name);
        if (i < 0) return GT_ERROR("unknown option \"%s\"; %s", name, forms);
        if (given[i]) return GT_ERROR("option %s given twice", name);
        given[i] = 1;
        if (!parse_value(&k->opts[i], val, &spec->opt[i])) {
            char range[128];
            option_range(&k->opts[i], range, sizeof range);
            return GT_ERROR("%s=%s: expected %s", name, val, range);
        }
    }
    for (int i = 0; i < k->n_opts; i++)
        if (!k->opts[i].def && !given[i]) return GT_ERROR("missing option %s=...; %s", k->opts[i].name, forms);
    return GT_OK;
}
