/* Tests of src/core/config.c (INI + overrides + strict getters + unused
 * keys), of layer lines (src/nn/spec.c) and of the options a config resolves
 * to (src/app/options.c), and that every .ini file in configs/ resolves and
 * builds models of the expected sizes. Errors are values: each bad input must
 * fail with a message naming file:line, key and value. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "check.h"
#include "gentrain/app.h"
#include "gentrain/config.h"
#include "gentrain/core.h"
#include "gentrain/model.h"
#include "gentrain/nn.h"

/* ---- getters that must succeed ------------------------------------------- */

static gt_config *parse(const char *text, const char *origin) {
    gt_config *cfg = NULL;
    CHECK_OK(gt_config_parse(text, origin, &cfg));
    return cfg ? cfg : gt_config_new();
}
static const char *get_str(gt_config *c, const char *s, const char *k, const char *def) {
    const char *v = "";
    CHECK_OK(gt_config_str(c, s, k, def, &v));
    return v;
}
static long get_int(gt_config *c, const char *s, const char *k, long def, long lo, long hi) {
    long v = 0;
    CHECK_OK(gt_config_int(c, s, k, def, lo, hi, &v));
    return v;
}
static double get_float(gt_config *c, const char *s, const char *k, double def, double lo, double hi) {
    double v = 0;
    CHECK_OK(gt_config_float(c, s, k, def, lo, hi, &v));
    return v;
}
static int get_bool(gt_config *c, const char *s, const char *k, int def) {
    int v = -1;
    CHECK_OK(gt_config_bool(c, s, k, def, &v));
    return v;
}
static int get_choice(gt_config *c, const char *s, const char *k, const char *def, const char *const *ch) {
    int v = -1;
    CHECK_OK(gt_config_choice(c, s, k, def, ch, &v));
    return v;
}

/* Parses text as t.ini (with overrides); the first failing step's status. */
static gt_status parse_with(const char *text, const char *const *ov, gt_config **out) {
    GT_TRY(gt_config_parse(text, "t.ini", out));
    for (int i = 0; ov && ov[i]; i++) GT_TRY(gt_config_override(*out, ov[i]));
    return GT_OK;
}
/* One getter on t.ini: its status. */
static gt_status int_of(const char *text, const char *ov, const char *s, const char *k, long lo, long hi) {
    gt_config *cfg = NULL;
    const char *ovs[] = {ov, NULL};
    gt_status st = parse_with(text, ovs, &cfg);
    long v;
    if (!st) st = gt_config_int(cfg, s, k, lo, lo, hi, &v);
    gt_config_free(cfg);
    return st;
}
static gt_status float_of(const char *text, const char *s, const char *k, double lo, double hi) {
    gt_config *cfg = NULL;
    gt_status st = parse_with(text, NULL, &cfg);
    double v;
    if (!st) st = gt_config_float(cfg, s, k, lo, lo, hi, &v);
    gt_config_free(cfg);
    return st;
}
static gt_status parse_only(const char *text, const char *ov) {
    gt_config *cfg = NULL;
    const char *ovs[] = {ov, NULL};
    gt_status st = parse_with(text, ovs, &cfg);
    gt_config_free(cfg);
    return st;
}
/* Reads the "section.key" list, then the unknown-key check. */
static gt_status unused_of(const char *text, const char *ov, const char *const *reads) {
    gt_config *cfg = NULL;
    const char *ovs[] = {ov, NULL};
    gt_status st = parse_with(text, ovs, &cfg);
    for (int i = 0; !st && reads[i]; i++) {
        char sec[64], key[64];
        const char *dot = strchr(reads[i], '.'), *v;
        snprintf(sec, sizeof sec, "%.*s", (int)(dot - reads[i]), reads[i]);
        snprintf(key, sizeof key, "%s", dot + 1);
        st = gt_config_str(cfg, sec, key, "0", &v);
    }
    if (!st) st = gt_config_check_unused(cfg);
    gt_config_free(cfg);
    return st;
}

/* ---- config: parsing, getters, overrides, text ------------------------- */

static const char *sample_ini =
    "; a comment\n"                 /* 1 */
    "[run]\n"                       /* 2 */
    "dir = runs/x\n"                /* 3 */
    "seed = 7\n"                    /* 4 */
    "\n"                            /* 5 */
    "# another comment\n"           /* 6 */
    "[train]\n"                     /* 7 */
    "steps = 300   ; inline\n"      /* 8 */
    "batch_size=64\n"               /* 9 */
    "lr = 2e-4\n"                   /* 10 */
    "flag = yes\n"                  /* 11 */
    "path = a=b.c\n"                /* 12 */
    "[run]\n"                       /* 13 */
    "name = again\n";               /* 14 */

static void test_parse_and_getters(void) {
    gt_config *cfg = parse(sample_ini, "t.ini");
    CHECK(strcmp(get_str(cfg, "run", "dir", NULL), "runs/x") == 0, "run.dir");
    CHECK(strcmp(gt_config_where(cfg, "run", "dir"), "t.ini:3") == 0, "where run.dir: %s",
          gt_config_where(cfg, "run", "dir"));
    CHECK(strcmp(gt_config_where(cfg, "train", "steps"), "t.ini:8") == 0, "where steps: %s",
          gt_config_where(cfg, "train", "steps"));
    CHECK(strcmp(gt_config_where(cfg, "run", "name"), "t.ini:14") == 0, "where run.name");
    CHECK(get_int(cfg, "run", "seed", 0, 0, 100) == 7, "seed");
    CHECK(get_int(cfg, "train", "steps", 1, 1, 1000000) == 300, "steps (inline comment stripped)");
    CHECK(get_int(cfg, "train", "batch_size", 1, 1, 65536) == 64, "batch_size");
    CHECK(get_float(cfg, "train", "lr", 1e-3, 0, 1) == 2e-4, "lr");
    CHECK(get_bool(cfg, "train", "flag", 0) == 1, "flag");
    CHECK(strcmp(get_str(cfg, "train", "path", NULL), "a=b.c") == 0, "value with '=' and '.'");
    CHECK(gt_config_has(cfg, "run", "seed") && !gt_config_has(cfg, "run", "nope"), "has");
    CHECK(strcmp(gt_config_where(cfg, "run", "nope"), "(not set)") == 0, "where of a missing key");

    const char *keys[8];
    int n = gt_config_keys(cfg, "run", keys, 8);
    CHECK(n == 3 && strcmp(keys[0], "dir") == 0 && strcmp(keys[1], "seed") == 0 && strcmp(keys[2], "name") == 0,
          "keys of [run] in order (n=%d)", n);
    CHECK(gt_config_keys(cfg, "train", keys, 2) == 5, "keys count beyond cap");
    CHECK(gt_config_keys(cfg, "none", keys, 8) == 0, "keys of a missing section");

    /* Defaults are recorded with origin "default" and appear in the text. */
    CHECK(get_int(cfg, "train", "epochs", 5, 0, 100) == 5, "int default");
    CHECK(strcmp(gt_config_where(cfg, "train", "epochs"), "default") == 0, "default origin");
    CHECK(get_float(cfg, "optim", "beta1", 0.5, 0, 1) == 0.5, "float default");
    CHECK(get_float(cfg, "optim", "eps", 1e-8, 0, 1) == 1e-8, "float default 1e-8");
    CHECK(get_bool(cfg, "dist", "overlap", 1) == 1, "bool default");
    static const char *const kinds[] = {"adam", "sgd", NULL};
    CHECK(get_choice(cfg, "optim", "kind", "sgd", kinds) == 1, "choice default");
    CHECK(strcmp(get_str(cfg, "log", "file", "x.log"), "x.log") == 0, "str default");
    /* A second read sees the recorded default. */
    CHECK(get_int(cfg, "train", "epochs", 9, 0, 100) == 5, "recorded default is sticky");

    get_str(cfg, "run", "name", NULL);
    CHECK_OK(gt_config_check_unused(cfg)); /* everything was read */

    char *text = gt_config_text(cfg);
    const char *expect =
        "[run]\ndir = runs/x\nseed = 7\nname = again\n\n"
        "[train]\nsteps = 300\nbatch_size = 64\nlr = 2e-4\nflag = yes\npath = a=b.c\nepochs = 5\n\n"
        "[optim]\nbeta1 = 0.5\neps = 1e-08\nkind = sgd\n\n"
        "[dist]\noverlap = true\n\n"
        "[log]\nfile = x.log\n";
    CHECK(strcmp(text, expect) == 0, "text:\n%s\nexpected:\n%s", text, expect);

    /* The text parses back to the same values. */
    gt_config *back = parse(text, "text");
    CHECK(strcmp(get_str(back, "train", "lr", NULL), "2e-4") == 0, "round trip lr verbatim");
    CHECK(get_float(back, "optim", "eps", 1, 0, 1) == 1e-8, "round trip eps");
    CHECK(get_int(back, "train", "epochs", 1, 0, 100) == 5, "round trip default");
    CHECK(strcmp(gt_config_where(back, "log", "file"), "text:23") == 0, "round trip line: %s",
          gt_config_where(back, "log", "file"));
    /* and its own text is the same text */
    char *again = gt_config_text(back);
    CHECK(strcmp(again, text) == 0, "text of the text:\n%s\nexpected:\n%s", again, text);
    gt_free(again);
    gt_free(text);
    gt_config_free(back);
    gt_config_free(cfg);
}

static void test_strict_values(void) {
    gt_config *cfg = parse("[a]\ni1 = -12\ni2 = +3\nf1 = 1e3\nf2 = -0.25\nf3 = 5\n"
                                     "b1 = TRUE\nb2 = off\nb3 = 0\nb4 = On\nc = sgd\n",
                                     "v.ini");
    CHECK(get_int(cfg, "a", "i1", 0, -100, 100) == -12, "negative int");
    CHECK(get_int(cfg, "a", "i2", 0, -100, 100) == 3, "int with +");
    CHECK(get_float(cfg, "a", "f1", 0, 0, 1e4) == 1000.0, "float 1e3");
    CHECK(get_float(cfg, "a", "f2", 0, -1, 1) == -0.25, "negative float");
    CHECK(get_float(cfg, "a", "f3", 0, 0, 10) == 5.0, "integer as float");
    CHECK(get_bool(cfg, "a", "b1", 0) == 1 && get_bool(cfg, "a", "b2", 1) == 0 &&
              get_bool(cfg, "a", "b3", 1) == 0 && get_bool(cfg, "a", "b4", 0) == 1,
          "bool spellings");
    static const char *const kinds[] = {"adam", "sgd", NULL};
    CHECK(get_choice(cfg, "a", "c", "adam", kinds) == 1, "choice");
    gt_config_free(cfg);

    const char *t = "[train]\nsteps = 10\nbatch_size = abc\nlr = 0.1x\nn = 12x\nbig = 70000\n"
                    "flag = maybe\nkind = adagrad\nf = nan\ne = \nh = 1e999\nsp = 1 2\n";
    CHECK_ERROR(int_of(t, NULL, "train", "batch_size", 1, 65536), "int abc",
                "t.ini:3: [train] batch_size = \"abc\": expected an integer in [1, 65536]");
    CHECK_ERROR(int_of(t, NULL, "train", "n", 1, 65536), "int 12x", "t.ini:5: [train] n = \"12x\": expected an integer");
    CHECK_ERROR(int_of(t, NULL, "train", "big", 1, 65536), "int out of range", "t.ini:6: [train] big = \"70000\"",
                "[1, 65536]");
    CHECK_ERROR(int_of(t, NULL, "train", "e", 1, 65536), "int empty", "t.ini:10: [train] e = \"\": expected an integer");
    CHECK_ERROR(int_of(t, NULL, "train", "sp", 1, 65536), "int with space", "t.ini:12: [train] sp = \"1 2\"");
    CHECK_ERROR(float_of(t, "train", "lr", 0, 1), "float 0.1x", "t.ini:4: [train] lr = \"0.1x\": expected a number in [0, 1]");
    CHECK_ERROR(float_of(t, "train", "f", 0, 1), "float nan", "t.ini:9: [train] f = \"nan\"");
    CHECK_ERROR(float_of(t, "train", "h", 0, 1), "float overflow", "t.ini:11: [train] h = \"1e999\"");
    CHECK_ERROR(float_of(t, "train", "steps", 0, 1), "float out of range", "t.ini:2: [train] steps = \"10\"", "[0, 1]");
    gt_config *cfg2 = parse(t, "t.ini");
    int bv, cv;
    double pv;
    const char *sv;
    CHECK_ERROR(gt_config_bool(cfg2, "train", "flag", 0, &bv), "bool maybe",
                "t.ini:7: [train] flag = \"maybe\": expected true or false");
    static const char *const kinds2[] = {"adam", "sgd", NULL};
    CHECK_ERROR(gt_config_choice(cfg2, "train", "kind", "adam", kinds2, &cv), "choice",
                "t.ini:8: [train] kind = \"adagrad\": expected one of: adam, sgd");
    CHECK_ERROR(gt_config_str(cfg2, "train", "missing", NULL, &sv), "required key", "t.ini", "[train] missing", "required");
    CHECK_OK(gt_config_positive(cfg2, "train", "zero", 1, 10, &pv));
    CHECK(pv == 1, "positive default");
    gt_config_free(cfg2);
    cfg2 = parse("[optim]\nlr = 0\neps = -1\n", "p.ini");
    CHECK_ERROR(gt_config_positive(cfg2, "optim", "lr", 1e-3, 10, &pv), "lr = 0", "p.ini:2: [optim] lr = \"0\"",
                "expected a number in (0, 10]");
    CHECK_ERROR(gt_config_positive(cfg2, "optim", "eps", 1e-8, 1, &pv), "eps = -1", "p.ini:3", "(0, 1]");
    gt_config_free(cfg2);
}

static void test_overrides(void) {
    gt_config *cfg = parse("[train]\nsteps = 10\n", "o.ini");
    CHECK_OK(gt_config_override(cfg, "train.steps=20"));
    CHECK_OK(gt_config_override(cfg, " optim.lr = 1e-3 "));
    CHECK_OK(gt_config_override(cfg, "data.path=/a/b.c=d"));
    CHECK_OK(gt_config_override(cfg, "train.steps=30")); /* the last one wins (with a warning) */
    CHECK(get_int(cfg, "train", "steps", 1, 1, 100) == 30, "override replaces");
    CHECK(strcmp(gt_config_where(cfg, "train", "steps"), "command line") == 0, "override origin");
    CHECK(get_float(cfg, "optim", "lr", 1, 0, 1) == 1e-3, "override adds, trimmed");
    CHECK(strcmp(get_str(cfg, "data", "path", NULL), "/a/b.c=d") == 0, "override value keeps '=' and '.'");
    const char *keys[4];
    CHECK(gt_config_keys(cfg, "train", keys, 4) == 1, "override of an existing key does not add one");
    gt_config_free(cfg);

    const char *t = "[train]\nsteps = 10\n";
    gt_status st = parse_only(t, "trainsteps=5");
    CHECK(st == GT_ERR_USAGE, "a bad setting is a usage error (status %d)", (int)st);
    CHECK_ERROR(st, "override without dot", "\"trainsteps=5\"", "section.key=value");
    CHECK_ERROR(parse_only(t, "train.steps"), "override without =", "\"train.steps\"", "section.key=value");
    CHECK_ERROR(parse_only(t, "train.=5"), "override empty key", "\"train.=5\"", "empty key", "section.key=value");
    CHECK_ERROR(parse_only(t, ".steps=5"), "override empty section", "\".steps=5\"", "section.key=value");
    /* values that would read as comments once written back as "key = value" (a fuzz finding) */
    CHECK_ERROR(parse_only("[run]\ndir =;runs/x ; a comment\n", NULL), "value starting with ';'", "t.ini:2",
                "[run] dir = \";runs/x\": a value may not begin with ';'");
    CHECK_ERROR(parse_only(t, "run.dir=a ;b"), "override with ' ;'", "\"run.dir=a ;b\"", "would read as a comment");
    CHECK_ERROR(parse_only(t, "run.dir=;b"), "override starting with ';'", "would read as a comment");
    CHECK_OK(parse_only(t, "run.dir=a;b"), "a ';' inside a word is a value");
    /* A bad override value is reported as coming from the command line. */
    CHECK_ERROR(int_of(t, "train.steps=many", "train", "steps", 1, 100), "bad override value",
                "command line: [train] steps = \"many\": expected an integer in [1, 100]");
    /* An override for a key nobody reads is caught as unknown. */
    CHECK_ERROR(unused_of(t, "train.stpes=5", NEEDLES("train.steps")), "unknown override",
                "command line: unknown key [train] stpes; keys allowed in [train]: steps");
}

static void test_file_errors(void) {
    CHECK_ERROR(parse_only("[train]\nsteps = 1\nbatch_size = 2\n\nsteps = 3\n", NULL), "duplicate key", "t.ini:5",
                "duplicate key [train] steps", "t.ini:2");
    CHECK_ERROR(parse_only("[a]\nx = 1\n[b]\ny = 2\n[a]\nx = 3\n", NULL), "duplicate key across repeated section",
                "t.ini:6", "[a] x", "t.ini:2");
    CHECK_ERROR(parse_only("[train]\nsteps = 1\nthis is not ini\n", NULL), "syntax error", "t.ini:3", "this is not ini");
    CHECK_ERROR(parse_only("[train\nsteps = 1\n", NULL), "bad section", "t.ini:1", "[train");
    CHECK_ERROR(parse_only("steps = 1\n[train]\n", NULL), "key before section", "t.ini:1", "steps", "[section]");
    CHECK_ERROR(parse_only("[train]\nsteps = 1\n  batch_size = 2\n", NULL), "indented line", "t.ini:3",
                "[train] steps", "continuation");

    /* Long lines have no limit: a 300- and a 5000-character value read back
     * whole, also through the resolved text (a long run.dir or data path). */
    static char longline[6000], value[5100];
    for (int len = 300; len <= 5000; len += 4700) {
        memset(value, 'v', (size_t)len);
        value[len] = '\0';
        value[0] = '/';
        snprintf(longline, sizeof longline, "[a]\nk = %s   ; a comment\nafter = 1\n", value);
        gt_config *cfg = parse(longline, "long.ini");
        CHECK(strcmp(get_str(cfg, "a", "k", NULL), value) == 0, "a %d-character value reads back whole", len);
        CHECK(get_int(cfg, "a", "after", 0, 0, 9) == 1, "the line after a long one");
        char *text = gt_config_text(cfg);
        gt_config *back = parse(text, "text");
        CHECK(strcmp(get_str(back, "a", "k", NULL), value) == 0, "a %d-character value through the text", len);
        gt_config_free(back);
        gt_free(text);
        gt_config_free(cfg);
        CHECK_OK(gt_config_parse("[run]\n", "o", &cfg));
        char ov[5200];
        snprintf(ov, sizeof ov, "run.dir=%s", value);
        CHECK_OK(gt_config_override(cfg, ov));
        text = gt_config_text(cfg);
        CHECK_OK(gt_config_parse(text, "text", &back));
        CHECK(back && strcmp(get_str(back, "run", "dir", NULL), value) == 0, "a long override through the text");
        gt_config_free(back);
        gt_free(text);
        gt_config_free(cfg);
    }
    snprintf(longline, sizeof longline, "[a]\n; %05000d\n", 1);
    CHECK_ERROR(parse_only(longline, NULL), "a long comment line", "t.ini:2", "too long");

    gt_config *cfg;
    CHECK_ERROR(gt_config_load("/nonexistent/dir/x.ini", &cfg), "missing file", "/nonexistent/dir/x.ini",
                "No such file");

    /* Unknown keys: file:line, the key, and the keys that are allowed. */
    CHECK_ERROR(unused_of("[train]\nsteps = 10\nbatch_size = 4\n\nstesp = 3\n[optim]\nlr = 1\n", NULL,
                          NEEDLES("train.steps", "train.batch_size", "train.epochs", "optim.lr")),
                "unknown key", "t.ini:5: unknown key [train] stesp; keys allowed in [train]: steps, batch_size, epochs",
                "did you mean steps?");
    CHECK_ERROR(unused_of("[run]\nseed = 1\n[trian]\nsteps = 10\n", NULL, NEEDLES("run.seed", "train.steps", "optim.lr")),
                "unknown section", "t.ini:4: unknown section [trian]", "known sections: run, train, optim",
                "did you mean train?");

    /* Loading a real file names it in messages. */
    char path[] = "/tmp/gentrain_test_config_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    if (fd < 0) return;
    const char *body = "[train]\nsteps = 5\nbatch_size = x\n";
    CHECK(write(fd, body, strlen(body)) == (ssize_t)strlen(body), "write temp file");
    close(fd);
    CHECK_OK(gt_config_load(path, &cfg));
    char where[128];
    snprintf(where, sizeof where, "%s:2", path);
    CHECK(strcmp(gt_config_where(cfg, "train", "steps"), where) == 0, "load where");
    long v;
    snprintf(where, sizeof where, "%s:3: [train] batch_size = \"x\": expected an integer in [1, 10]", path);
    CHECK_ERROR(gt_config_int(cfg, "train", "batch_size", 1, 1, 10, &v), "bad value in a loaded file", where);
    gt_config_free(cfg);
    CHECK(unlink(path) == 0, "unlink temp file");
}

/* ---- layer lines and options -------------------------------------------------- */

static long opt_i(const gt_layer_spec *s, const char *name) {
    int i = gt_layer_opt_index(s->kind, name);
    CHECK(i >= 0, "kind %s has option %s", s->kind->name, name);
    return i >= 0 ? s->opt[i].i : -1;
}
static double opt_f(const gt_layer_spec *s, const char *name) {
    int i = gt_layer_opt_index(s->kind, name);
    CHECK(i >= 0, "kind %s has option %s", s->kind->name, name);
    return i >= 0 ? s->opt[i].f : -1;
}
static int is_kind(const gt_layer_spec *s, const char *name) { return !strcmp(s->kind->name, name); }

/* A config with a classifier whose [classifier] section is `layers`, resolved. */
static gt_status options_of(const char *layers, const char *ov, gt_config **cfg, gt_options *o) {
    char text[4096];
    snprintf(text, sizeof text, "[model]\ntype = classifier\n[train]\nsteps = 1\n[classifier]\n%s", layers);
    const char *ovs[] = {ov, NULL};
    GT_TRY(parse_with(text, ovs, cfg));
    return gt_options_from_config(*cfg, "t.ini", o);
}
static gt_status layers_error_ov(const char *layers, const char *ov) {
    gt_config *cfg = NULL;
    gt_options o;
    gt_status st = options_of(layers, ov, &cfg, &o);
    if (!st) gt_options_free(&o);
    gt_config_free(cfg);
    return st;
}
static gt_status layers_error(const char *layers) { return layers_error_ov(layers, NULL); }

static void test_layer_lines(void) {
    const char *t = "layer1 = conv2d out=8 kernel=3 stride=2 pad=1 bias=false\n" /* line 6 */
                    "layer2 = batchnorm eps=1e-3 momentum=0.2\n"
                    "layer3 = leakyrelu slope=0.1\n"
                    "layer4 = convt2d out=4 kernel=4 stride=2 pad=1 output_pad=0 bias=no\n"
                    "layer5 = relu\n"
                    "layer10 = dropout p=0.25\n" /* line 11 */
                    "layer7 = sigmoid\n"
                    "layer8 = tanh\n"
                    "layer12 = flatten\n"
                    "layer15 = dense   out=7\n"
                    "layer20 = reshape shape=7x1x1\n"
                    "layer21 = conv2d out=3 kernel=1\n"
                    "layer22 = dense out=5 bias=false\n"
                    "layer23 = reshape shape=5\n"
                    "layer24 = leakyrelu\n"
                    "layer25 = batchnorm\n"
                    "layer26 = dropout\n";
    gt_config *cfg = NULL;
    gt_options o;
    CHECK_OK(options_of(t, NULL, &cfg, &o));
    gt_net_opts *n = &o.model.net[0];
    CHECK(n->n_layers == 17, "layer count %d", n->n_layers);
    gt_net net;
    gt_net_init(&net, "net", (gt_shape){1, 28, 28});
    for (int i = 0; i < n->n_layers; i++) CHECK_OK(gt_net_add(&net, n->layers[i]));
    if (n->n_layers == 17 && net.n_layers == 17) {
        const gt_layer_spec *s = &n->layers[0];
        CHECK(is_kind(s, "conv2d") && opt_i(s, "out") == 8 && opt_i(s, "kernel") == 3 && opt_i(s, "stride") == 2 &&
                  opt_i(s, "pad") == 1 && opt_i(s, "bias") == 0,
              "conv2d spec");
        CHECK(net.layers[0].out.c == 8 && net.layers[0].out.h == 14 && net.layers[0].out.w == 14, "conv2d shape");
        s = &n->layers[1];
        CHECK(is_kind(s, "batchnorm") && opt_f(s, "eps") == 1e-3 && opt_f(s, "momentum") == 0.2, "batchnorm spec");
        s = &n->layers[2];
        CHECK(is_kind(s, "leakyrelu") && opt_f(s, "slope") == 0.1, "leakyrelu spec");
        s = &n->layers[3];
        CHECK(is_kind(s, "convt2d") && opt_i(s, "out") == 4 && opt_i(s, "kernel") == 4 && opt_i(s, "stride") == 2 &&
                  opt_i(s, "pad") == 1 && opt_i(s, "output_pad") == 0 && opt_i(s, "bias") == 0,
              "convt2d spec");
        CHECK(net.layers[3].out.c == 4 && net.layers[3].out.h == 28, "convt2d shape");
        CHECK(is_kind(&n->layers[4], "relu"), "relu (layer5)");
        CHECK(is_kind(&n->layers[5], "sigmoid"), "sigmoid (layer7 before layer10)");
        CHECK(is_kind(&n->layers[6], "tanh"), "tanh (layer8)");
        s = &n->layers[7];
        CHECK(is_kind(s, "dropout") && opt_f(s, "p") == 0.25, "dropout spec (layer10)");
        CHECK(is_kind(&n->layers[8], "flatten"), "flatten spec");
        CHECK(net.layers[8].out.c == 4 * 28 * 28 && net.layers[8].out.h == 1, "flatten shape");
        s = &n->layers[9];
        CHECK(is_kind(s, "dense") && opt_i(s, "out") == 7 && opt_i(s, "bias") == 1, "dense spec with default bias");
        s = &n->layers[10];
        CHECK(is_kind(s, "reshape") && s->opt[0].shape.c == 7 && s->opt[0].shape.h == 1, "reshape spec");
        s = &n->layers[11];
        CHECK(is_kind(s, "conv2d") && opt_i(s, "kernel") == 1 && opt_i(s, "stride") == 1 && opt_i(s, "pad") == 0 &&
                  opt_i(s, "bias") == 1,
              "conv2d defaults");
        s = &n->layers[12];
        CHECK(is_kind(s, "dense") && opt_i(s, "out") == 5 && opt_i(s, "bias") == 0, "dense bias=false");
        s = &n->layers[13];
        CHECK(is_kind(s, "reshape") && s->opt[0].shape.c == 5 && s->opt[0].shape.w == 1, "reshape shape=N");
        gt_layer_spec d = gt_layer_spec_default(gt_layer_kind_find("leakyrelu"));
        CHECK(opt_f(&n->layers[14], "slope") == opt_f(&d, "slope") && opt_f(&d, "slope") == 0.01,
              "leakyrelu default slope");
        d = gt_layer_spec_default(gt_layer_kind_find("batchnorm"));
        CHECK(opt_f(&n->layers[15], "eps") == 1e-5 && opt_f(&n->layers[15], "momentum") == 0.1, "batchnorm defaults");
        CHECK(opt_f(&n->layers[16], "p") == 0.5, "dropout default p");
        CHECK(net.out.c == 5 && net.out.h == 1 && net.out.w == 1, "net output shape");
        CHECK(strstr(n->where[7], "t.ini:11: [classifier] layer10 = \"dropout p=0.25\"") != NULL, "where of layer10: %s",
              n->where[7]);
    }
    gt_net_free(&net);
    gt_options_free(&o);
    gt_config_free(cfg);

    /* Every kind in the registry has a unique name and parses with its
     * defaults; every option's default is in its range. */
    int n_kinds = 0;
    for (int i = 0; gt_layer_kinds[i]; i++, n_kinds++) {
        const gt_layer_kind *k = gt_layer_kinds[i];
        CHECK(gt_layer_kind_find(k->name) == k, "kind %s found by name", k->name);
        char line[512];
        size_t len = (size_t)snprintf(line, sizeof line, "%s", k->name);
        for (int j = 0; j < k->n_opts; j++)
            if (!k->opts[j].def)
                len += (size_t)snprintf(line + len, sizeof line - len, " %s=%s", k->opts[j].name,
                                        k->opts[j].type == GT_OPT_SHAPE ? "4x2x2" : "3");
        gt_layer_spec a, b = gt_layer_spec_default(k);
        CHECK_OK(gt_layer_spec_parse(line, &a));
        for (int j = 0; j < k->n_opts; j++)
            if (k->opts[j].def)
                CHECK(!memcmp(&a.opt[j], &b.opt[j], sizeof a.opt[j]), "%s: option %s is not its default", k->name,
                      k->opts[j].name);
        for (int j = 0; j < k->n_opts; j++) { /* the default, written out, parses */
            if (!k->opts[j].def) continue;
            char one[1024];
            snprintf(one, sizeof one, "%s %s=%s", line, k->opts[j].name, k->opts[j].def);
            CHECK_OK(gt_layer_spec_parse(one, &b));
        }
    }
    CHECK(n_kinds >= 11 && gt_layer_kind_find("nope") == NULL, "registry: %d kinds", n_kinds);

    /* Error cases: each names file:line, [section] key and the line. */
    CHECK_ERROR(layers_error("layer1 = flatten\nlayer2 = dens out=3\n"), "unknown kind",
                "t.ini:7: [classifier] layer2 = \"dens out=3\"", "unknown layer kind \"dens\"", "dense", "conv2d",
                "flatten");
    CHECK_ERROR(layers_error("layer1 = conv2d out=4 kernel=3 strides=2\n"), "unknown option", "t.ini:6: [classifier] layer1 = ",
                "unknown option \"strides\"", "out=N", "kernel=N", "stride=N [1]", "pad=N [0]", "bias=true|false [true]");
    CHECK_ERROR(layers_error("layer1 = relu slope=0.2\n"), "option of an option-less kind", "t.ini:6",
                "unknown option \"slope\"", "relu takes no options");
    CHECK_ERROR(layers_error("layer1 = dense out=abc\n"), "bad int option", "t.ini:6: [classifier] layer1 = \"dense out=abc\"",
                "out=abc", "an integer in [1, 1073741824]");
    CHECK_ERROR(layers_error("layer1 = dense out=0\n"), "zero out", "t.ini:6", "out=0", "[1, 1073741824]");
    CHECK_ERROR(layers_error("layer1 = dense out=2000000000\n"), "huge out names the real limit", "out=2000000000",
                "[1, 1073741824]");
    CHECK_ERROR(layers_error("layer1 = conv2d out=4 kernel=3 pad=-1\n"), "negative pad", "t.ini:6", "pad=-1", "[0, 65536]");
    CHECK_ERROR(layers_error("layer1 = dense out=4 bias=maybe\n"), "bad bool option", "t.ini:6", "bias=maybe",
                "true or false");
    CHECK_ERROR(layers_error("layer1 = flatten\nlayer2 = dropout p=1.0\n"), "dropout p=1", "t.ini:7", "p=1.0", "[0, 1)");
    CHECK_ERROR(layers_error("layer1 = flatten\nlayer2 = batchnorm eps=0\n"), "bn eps=0", "t.ini:7", "eps=0", "(0, 1]");
    CHECK_ERROR(layers_error("layer1 = leakyrelu slope=x\n"), "bad float option", "t.ini:6", "slope=x");
    CHECK_ERROR(layers_error("layer1 = reshape shape=2x2\n"), "bad shape", "t.ini:6", "shape=2x2", "CxHxW");
    CHECK_ERROR(layers_error("layer1 = reshape\n"), "missing shape", "t.ini:6", "missing option shape=");
    CHECK_ERROR(layers_error("layer1 = dense bias=false\n"), "missing out", "t.ini:6", "missing option out=");
    CHECK_ERROR(layers_error("layer1 = conv2d out=3\n"), "missing kernel", "t.ini:6", "missing option kernel=");
    CHECK_ERROR(layers_error("layer1 = dense out=3 out=4\n"), "option twice", "t.ini:6", "out given twice");
    CHECK_ERROR(layers_error("layer1 = dense 3\n"), "not opt=value", "t.ini:6", "\"3\" is not opt=value");
    CHECK_ERROR(layers_error("layer1 =\n"), "empty layer", "t.ini:6", "empty layer");
    CHECK_ERROR(layers_error("layer1 = relu\nlayer01 = tanh\n"), "same layer number twice", "t.ini:7", "layer01", "layer1",
                "t.ini:6");
    CHECK_ERROR(layers_error("layer0 = relu\n"), "layer0", "t.ini:6", "layer0", "positive");
    CHECK_ERROR(layers_error("size = 3\n"), "no layers", "[classifier]", "no layers", "layer1");
    CHECK_ERROR(layers_error("layer1 = relu\nwidth = 3\nlayer2 = tanh\n"), "a non-layer key is unknown",
                "t.ini:7: unknown key [classifier] width; keys allowed in [classifier]: init, layer1, layer2");
    /* init: a scheme from the list; init_std only with init = normal */
    CHECK_ERROR(layers_error("init = uniform\nlayer1 = relu\n"), "bad init", "t.ini:6", "uniform",
                "pytorch, normal, xavier, kaiming");
    CHECK_ERROR(layers_error("init = xavier\ninit_std = 0.1\nlayer1 = relu\n"), "init_std without init = normal",
                "t.ini:7: unknown key [classifier] init_std");
    CHECK_ERROR(layers_error("init = normal\ninit_std = 0\nlayer1 = relu\n"), "init_std = 0", "t.ini:7", "init_std");
}

/* A model from a config that must fail to build, naming the layer line. */
static gt_status build_error(const char *layers, const char *ov) {
    gt_config *cfg = NULL;
    gt_options o;
    gt_model *m = NULL;
    gt_status st = options_of(layers, ov, &cfg, &o);
    if (!st) {
        st = gt_model_build(&o.model, (gt_shape){1, 28, 28}, 10, 4, 1, &m);
        gt_options_free(&o);
    }
    gt_model_free(m);
    gt_config_free(cfg);
    return st;
}

static void test_options(void) {
    /* A layer that does not fit: gt_net_add's reason, with file:line. */
    CHECK_ERROR(build_error("layer1 = flatten\nlayer2 = reshape shape=3x5x5\n", NULL), "reshape that does not fit",
                "t.ini:7: [classifier] layer2 = \"reshape shape=3x5x5\": ", "cannot reshape 784");
    CHECK_ERROR(build_error("layer1 = flatten\nlayer2 = dense out=7\n", NULL), "wrong output shape",
                "t.ini:7: [classifier] layer2 = \"dense out=7\"", "ends with shape 7x1x1", "the number of classes is 10x1x1");
    /* an override of a layer is reported at the command line, not at [model] type */
    CHECK_ERROR(build_error("layer1 = flatten\nlayer2 = dense out=10\n", "classifier.layer2=dense out=3"),
                "bad layer override", "command line: [classifier] layer2 = \"dense out=3\"", "ends with shape 3x1x1");
    /* a pad so large that the model would need more memory than the machine has */
    CHECK_ERROR(build_error("layer1 = conv2d out=64 kernel=3 pad=1000\nlayer2 = flatten\nlayer3 = dense out=10\n", NULL),
                "memory check", "the model needs", "GB", "more than this machine");

    /* run.dir: at most GT_RUN_DIR_MAX characters (PATH_MAX less room for the
     * run's files), a usage error on the command line */
    static char dirset[GT_RUN_DIR_MAX + 16];
    snprintf(dirset, sizeof dirset, "run.dir=/%0*d", GT_RUN_DIR_MAX, 0);
    gt_status dir_st = layers_error_ov("layer1 = flatten\nlayer2 = dense out=10\n", dirset);
    CHECK(dir_st == GT_ERR_USAGE, "a run.dir of %d characters: status %d", GT_RUN_DIR_MAX + 1, (int)dir_st);
    CHECK_ERROR(dir_st, "run.dir too long", "command line: [run] dir has 4001 characters", "at most 4000");
    snprintf(dirset, sizeof dirset, "run.dir=/%0*d", GT_RUN_DIR_MAX - 1, 0);
    CHECK_OK(layers_error_ov("layer1 = flatten\nlayer2 = dense out=10\n", dirset));

    /* A message longer than the error buffer keeps its head and its tail
     * (where the reason is) around a note of what was left out. */
    static char huge[9001];
    memset(huge, 'p', sizeof huge - 1);
    huge[0] = '/';
    CHECK_ERROR(GT_ERROR("cannot open %s: File name too long", huge), "a message longer than its buffer",
                "cannot open /ppp", "characters ...]ppp", "ppp: File name too long");
    (void)GT_ERROR("%s: the end", huge);
    CHECK(strlen(gt_error_message()) < 4096 && strstr(gt_error_message(), "[... ") != NULL, "shortened: %zu chars",
          strlen(gt_error_message()));
    gt_error_clear();

    /* Options: defaults, conditional keys and checks. */
    gt_config *cfg = NULL;
    gt_options o;
    CHECK_OK(options_of("layer1 = flatten\nlayer2 = dense out=10\n", NULL, &cfg, &o));
    CHECK(!strcmp(o.dir, "runs/t") && o.seed == 1 && o.batch == 64 && o.model.net[0].optim.lr == 1e-3 &&
              o.model.net[0].optim.beta1 == 0.9 && o.data.kind == GT_DATA_IDX && o.log_every == 50,
          "defaults: dir %s seed %llu batch %d", o.dir, (unsigned long long)o.seed, o.batch);
    CHECK(strstr(o.text, "[optim]\n") && strstr(o.text, "lr_classifier = 0.001"), "resolved text lists defaults:\n%s",
          o.text);
    gt_options_free(&o);
    gt_config_free(cfg);
    cfg = parse("[model]\ntype = gan\n[train]\nsteps = 1\n[optim]\nkind = sgd\nlr = 0.5\nlr_discriminator = 0.25\n"
                "[generator]\nlayer1 = dense out=4\n[discriminator]\nlayer1 = dense out=1\n",
                "g.ini");
    CHECK_OK(gt_options_from_config(cfg, "dir/g.ini", &o));
    CHECK(o.model.z_dim == 100 && o.model.net[0].optim.lr == 0.5 && o.model.net[1].optim.lr == 0.25 &&
              o.model.net[1].optim.kind == GT_OPT_SGD && o.model.net[1].optim.beta1 == 0 && !strcmp(o.dir, "runs/g"),
          "GAN: z_dim default, TTUR rates, SGD momentum default");
    gt_options_free(&o);
    gt_config_free(cfg);
    const char *base = "[model]\ntype = classifier\n[classifier]\nlayer1 = dense out=10\n";
    char text[1024];
    snprintf(text, sizeof text, "%s[train]\nsteps = 1\n[data]\ntoy = ring8\n", base);
    cfg = parse(text, "t.ini");
    CHECK_ERROR(gt_options_from_config(cfg, "t.ini", &o), "a toy key with fashion-mnist data",
                "t.ini:8: unknown key [data] toy; keys allowed in [data]: kind, train_images");
    gt_config_free(cfg);
    snprintf(text, sizeof text, "%s[train]\nsteps = 1\nepochs = 2\n", base);
    cfg = parse(text, "t.ini");
    CHECK_ERROR(gt_options_from_config(cfg, "t.ini", &o), "steps and epochs", "set only one of [train] steps");
    gt_config_free(cfg);
    snprintf(text, sizeof text, "%s[train]\nsteps = 1\n[run]\ndir =\n", base);
    cfg = parse(text, "t.ini");
    CHECK_ERROR(gt_options_from_config(cfg, "t.ini", &o), "empty run.dir", "[run] dir is empty");
    gt_config_free(cfg);
    snprintf(text, sizeof text, "%s[train]\nsteps = 1\n[optim]\nlr = 0\n", base);
    cfg = parse(text, "t.ini");
    CHECK_ERROR(gt_options_from_config(cfg, "t.ini", &o), "lr = 0", "t.ini:8: [optim] lr = \"0\"", "(0, 10]");
    gt_config_free(cfg);
}

/* ---- the shipped configs ----------------------------------------------- */

static size_t dense_p(size_t in, size_t out, int bias) { return in * out + (bias ? out : 0); }
static size_t conv_p(size_t in, size_t out, size_t k, int bias) { return in * out * k * k + (bias ? out : 0); }

typedef struct {
    const char *name;
    size_t params[2];
} expected_cfg;

static void test_shipped_configs(void) {
    const char *src = getenv("GENTRAIN_SOURCE_DIR");
    if (!src) src = ".";
    const size_t G_dcgan = dense_p(100, 12544, 0) + 2 * 12544 + conv_p(256, 128, 4, 0) + 2 * 128 +
                           conv_p(128, 64, 4, 0) + 2 * 64 + conv_p(64, 1, 3, 1);
    const size_t D_dcgan = conv_p(1, 64, 4, 1) + conv_p(64, 128, 4, 1) + dense_p(6272, 1, 1);
    const expected_cfg table[] = {
        {"dcgan", {G_dcgan, D_dcgan}},
        {"vae",
         {conv_p(1, 32, 4, 1) + conv_p(32, 64, 4, 1) + dense_p(3136, 256, 1) + dense_p(256, 40, 1),
          dense_p(20, 256, 1) + dense_p(256, 3136, 1) + conv_p(64, 32, 4, 1) + conv_p(32, 1, 4, 1)}},
        {"mlpvae", {dense_p(784, 400, 1) + dense_p(400, 40, 1), dense_p(20, 400, 1) + dense_p(400, 784, 1)}},
        {"mlpgan",
         {dense_p(100, 256, 1) + dense_p(256, 512, 1) + dense_p(512, 1024, 1) + dense_p(1024, 784, 1),
          dense_p(784, 512, 1) + dense_p(512, 256, 1) + dense_p(256, 1, 1)}},
        {"toygan",
         {dense_p(16, 400, 1) + 3 * dense_p(400, 400, 1) + 4 * 2 * 400 + dense_p(400, 2, 1),
          dense_p(2, 200, 1) + 2 * dense_p(200, 200, 1) + dense_p(200, 1, 1)}},
        {"toyvae",
         {dense_p(2, 128, 1) + dense_p(128, 128, 1) + dense_p(128, 4, 1),
          dense_p(2, 128, 1) + dense_p(128, 128, 1) + dense_p(128, 2, 1)}},
        {"dcgan64",
         {dense_p(100, 4096, 0) + 2 * 4096 + conv_p(256, 128, 4, 0) + 2 * 128 + conv_p(128, 64, 4, 0) + 2 * 64 +
              conv_p(64, 32, 4, 0) + 2 * 32 + conv_p(32, 3, 4, 1),
          conv_p(3, 32, 4, 1) + conv_p(32, 64, 4, 1) + conv_p(64, 128, 4, 1) + conv_p(128, 256, 4, 1) +
              dense_p(4096, 1, 1)}},
        {"vae64",
         {conv_p(3, 32, 4, 1) + conv_p(32, 64, 4, 1) + conv_p(64, 128, 4, 1) + conv_p(128, 256, 4, 1) +
              dense_p(4096, 128, 1),
          dense_p(64, 4096, 1) + conv_p(256, 128, 4, 1) + conv_p(128, 64, 4, 1) + conv_p(64, 32, 4, 1) +
              conv_p(32, 3, 4, 1)}},
        {"dcgan-resize",
         {dense_p(100, 12544, 0) + 2 * 12544 + conv_p(256, 128, 3, 0) + 2 * 128 + conv_p(128, 64, 3, 0) + 2 * 64 +
              conv_p(64, 1, 3, 1),
          D_dcgan}},
        {"dcgan-paper", {G_dcgan, conv_p(1, 64, 4, 1) + conv_p(64, 128, 4, 0) + 2 * 128 + dense_p(6272, 1, 1)}},
        {"classifier",
         {conv_p(1, 32, 3, 0) + 2 * 32 + conv_p(32, 32, 4, 0) + 2 * 32 + conv_p(32, 64, 4, 0) + 2 * 64 +
              dense_p(3136, 128, 0) + 2 * 128 + dense_p(128, 10, 1),
          0}},
    };
    CHECK(G_dcgan == 1935809 && D_dcgan == 138561, "dcgan counts by hand: %zu %zu", G_dcgan, D_dcgan);
    CHECK(table[6].params[0] == 1107907 && table[6].params[1] == 694241, "dcgan64 counts by hand: %zu %zu",
          table[6].params[0], table[6].params[1]);
    CHECK(table[7].params[0] == 1214560 && table[7].params[1] == 956131, "vae64 counts by hand: %zu %zu",
          table[7].params[0], table[7].params[1]);
    CHECK(table[8].params[0] == 1649089, "dcgan-resize G counts by hand: %zu", table[8].params[0]);
    const int n_expected = (int)(sizeof table / sizeof table[0]);
    int seen[16] = {0};

    char dir[4096];
    snprintf(dir, sizeof dir, "%s/configs", src);
    DIR *d = opendir(dir);
    CHECK(d != NULL, "cannot open %s (set GENTRAIN_SOURCE_DIR)", dir);
    if (!d) return;
    struct dirent *de;
    int n_files = 0;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 5 || strcmp(de->d_name + len - 4, ".ini") != 0) continue;
        n_files++;
        char path[8192], name[256];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        snprintf(name, sizeof name, "%.*s", (int)(len - 4), de->d_name);
        gt_config *cfg = NULL;
        gt_options o;
        memset(&o, 0, sizeof o);
        CHECK_OK(gt_config_load(path, &cfg));
        if (!cfg) continue;
        gt_status st = gt_options_from_config(cfg, path, &o);
        CHECK(st == GT_OK, "%s: %s", path, gt_error_message());
        gt_error_clear();
        if (st) {
            gt_config_free(cfg);
            continue;
        }
        char want_dir[300];
        snprintf(want_dir, sizeof want_dir, "runs/%s", name);
        CHECK(strcmp(o.dir, want_dir) == 0, "%s: run.dir %s", path, o.dir);
        CHECK(o.steps <= 5000, "%s: short default run", path);
        /* the HDF5 configs are the 64x64 RGB ones */
        gt_shape data = o.data.kind == GT_DATA_IDX    ? (gt_shape){1, 28, 28}
                        : o.data.kind == GT_DATA_HDF5 ? (gt_shape){3, 64, 64}
                                                      : (gt_shape){2, 1, 1};
        const expected_cfg *e = NULL;
        for (int i = 0; i < n_expected; i++)
            if (strcmp(table[i].name, name) == 0) e = &table[i], seen[i] = 1;
        CHECK(e != NULL, "%s: a config the test does not know; add its expected sizes", path);
        gt_model *m = NULL;
        CHECK_OK(gt_model_build(&o.model, data, 10, 2, 1, &m));
        if (e && m)
            for (int k = 0; k < m->n_nets; k++)
                CHECK(m->net[k].n_params == e->params[k], "%s [%s]: %zu parameters, expected %zu", path,
                      m->net[k].name, m->net[k].n_params, e->params[k]);
        if (m && !strcmp(name, "dcgan")) { /* the DCGAN's layer table is the reference's exactly */
            static const char *const gk[] = {"dense",     "batchnorm", "leakyrelu", "reshape", "convt2d",  "batchnorm",
                                             "leakyrelu", "convt2d",   "batchnorm", "leakyrelu", "conv2d", "tanh"};
            gt_net *g = &m->net[0];
            CHECK(g->n_layers == 12, "dcgan G layers %d", g->n_layers);
            for (int i = 0; i < g->n_layers && i < 12; i++) CHECK(!strcmp(g->layers[i].kind->name, gk[i]), "dcgan G layer %d", i);
            if (g->n_layers == 12) {
                CHECK(g->layers[0].n_tensors == 1 && g->layers[4].n_tensors == 1 && g->layers[10].n_tensors == 2,
                      "dcgan G biases");
                CHECK(opt_f(&g->layers[2].spec, "slope") == 0.2, "dcgan slope");
                CHECK(g->layers[3].out.c == 256 && g->layers[3].out.h == 7, "dcgan reshape");
                CHECK(g->layers[4].out.c == 128 && g->layers[4].out.h == 14, "dcgan convt1 shape");
            }
        }
        if (m && !strcmp(name, "dcgan-resize")) { /* resize-convolution: upsample + conv2d 3x3 for each convt2d */
            gt_net *g = &m->net[0];
            CHECK(g->n_layers == 14 && !strcmp(g->layers[4].kind->name, "upsample") &&
                      !strcmp(g->layers[8].kind->name, "upsample"),
                  "dcgan-resize G: %d layers, upsample at 4 and 8", g->n_layers);
            if (g->n_layers == 14)
                CHECK(g->layers[4].out.c == 256 && g->layers[4].out.h == 14 && g->layers[8].out.c == 128 &&
                          g->layers[8].out.h == 28 && g->out.c == 1 && g->out.h == 28 && g->out.w == 28,
                      "dcgan-resize G shapes");
        }
        gt_model_free(m);
        /* The resolved text of a shipped config resolves to itself. */
        gt_config *back = parse(o.text, "text");
        gt_options o2;
        memset(&o2, 0, sizeof o2);
        CHECK_OK(gt_options_from_config(back, path, &o2));
        CHECK(o2.text && strcmp(o2.text, o.text) == 0, "%s: the resolved text resolves to another text", path);
        gt_options_free(&o2);
        gt_config_free(back);
        gt_options_free(&o);
        gt_config_free(cfg);
    }
    if (closedir(d) != 0) perror("closedir");
    CHECK(n_files >= n_expected, "found %d config files in %s, expected %d", n_files, dir, n_expected);
    for (int i = 0; i < n_expected; i++) CHECK(seen[i], "configs/%s.ini is missing", table[i].name);
}

int main(void) {
    test_parse_and_getters();
    test_strict_values();
    test_overrides();
    test_file_errors();
    test_layer_lines();
    test_options();
    test_shipped_configs();
    return check_report("test_config");
}
