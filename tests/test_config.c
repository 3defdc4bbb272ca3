/* Tests of src/core/config.c (INI + overrides + strict getters + unused keys)
 * and src/models/netcfg.c (networks from layer lines), and that every .ini
 * file in configs/ parses and builds nets of the expected sizes.
 *
 * Error cases run in a fork()ed child whose stderr goes through a pipe: the
 * child must exit non-zero and its message must name file:line, key, value. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "gentrain/config.h"
#include "gentrain/core.h"
#include "gentrain/model.h"
#include "gentrain/nn.h"

/* ---- running error cases in a child ------------------------------------ */

typedef void (*child_fn)(const void *arg);

/* Runs fn(arg) in a child; returns its exit status (128+signal if killed)
 * and its stderr in out. */
static int run_child(child_fn fn, const void *arg, char *out, size_t cap) {
    int fd[2];
    if (pipe(fd) != 0) {
        perror("pipe");
        exit(2);
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        close(fd[0]);
        if (dup2(fd[1], 2) < 0) _exit(3);
        close(fd[1]);
        fn(arg);
        fflush(stderr);
        _exit(0);
    }
    close(fd[1]);
    size_t n = 0;
    for (;;) {
        ssize_t got = read(fd[0], out + n, cap - 1 - n);
        if (got <= 0) break;
        n += (size_t)got;
        if (n == cap - 1) break;
    }
    out[n] = '\0';
    close(fd[0]);
    int status;
    if (waitpid(pid, &status, 0) != pid) {
        perror("waitpid");
        exit(2);
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* The child must fail and its message must contain every needle. */
static void expect_error(const char *what, child_fn fn, const void *arg, const char *const *needles) {
    char out[8192];
    int rc = run_child(fn, arg, out, sizeof out);
    CHECK(rc == GT_EXIT_ERROR, "%s: exit status %d, expected %d; stderr: %s", what, rc, GT_EXIT_ERROR, out);
    CHECK(strstr(out, "gentrain: error: ") != NULL, "%s: no error line: %s", what, out);
    for (int i = 0; needles[i]; i++)
        CHECK(strstr(out, needles[i]) != NULL, "%s: message lacks \"%s\": %s", what, needles[i], out);
}
#define NEEDLES(...) ((const char *const[]){__VA_ARGS__, NULL})

/* A scenario for a child: parse text (as t.ini), apply overrides, then act. */
enum { ACT_PARSE, ACT_INT, ACT_FLOAT, ACT_BOOL, ACT_CHOICE, ACT_STR, ACT_UNUSED, ACT_NET, ACT_LOAD };
typedef struct {
    const char *text;
    const char *ov[4];
    int act;
    const char *section, *key;
    long lo, hi;
    const char *reads[8]; /* ACT_UNUSED: "section.key" read before the check */
} scen;

static void run_scen(const void *arg) {
    const scen *s = arg;
    if (s->act == ACT_LOAD) {
        gt_config *cfg = gt_config_load(s->text);
        if (s->key) gt_config_int(cfg, s->section, s->key, s->lo, s->lo, s->hi);
        gt_config_free(cfg);
        return;
    }
    gt_config *cfg = gt_config_parse(s->text, "t.ini");
    for (int i = 0; i < 4 && s->ov[i]; i++) gt_config_override(cfg, s->ov[i]);
    static const char *const choices[] = {"adam", "sgd", NULL};
    switch (s->act) {
    case ACT_INT: gt_config_int(cfg, s->section, s->key, s->lo, s->lo, s->hi); break;
    case ACT_FLOAT: gt_config_float(cfg, s->section, s->key, (double)s->lo, (double)s->lo, (double)s->hi); break;
    case ACT_BOOL: gt_config_bool(cfg, s->section, s->key, 0); break;
    case ACT_CHOICE: gt_config_choice(cfg, s->section, s->key, "adam", choices); break;
    case ACT_STR: gt_config_str(cfg, s->section, s->key, NULL); break;
    case ACT_UNUSED:
        for (int i = 0; i < 8 && s->reads[i]; i++) {
            char sec[64], key[64];
            const char *dot = strchr(s->reads[i], '.');
            snprintf(sec, sizeof sec, "%.*s", (int)(dot - s->reads[i]), s->reads[i]);
            snprintf(key, sizeof key, "%s", dot + 1);
            gt_config_str(cfg, sec, key, "0");
        }
        gt_config_check_unused(cfg);
        break;
    case ACT_NET: {
        gt_net net;
        gt_net_from_config(&net, cfg, s->section, (gt_shape){1, 28, 28});
        break;
    }
    default: break;
    }
    gt_config_free(cfg);
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
    gt_config *cfg = gt_config_parse(sample_ini, "t.ini");
    CHECK(strcmp(gt_config_str(cfg, "run", "dir", NULL), "runs/x") == 0, "run.dir");
    CHECK(strcmp(gt_config_where(cfg, "run", "dir"), "t.ini:3") == 0, "where run.dir: %s",
          gt_config_where(cfg, "run", "dir"));
    CHECK(strcmp(gt_config_where(cfg, "train", "steps"), "t.ini:8") == 0, "where steps: %s",
          gt_config_where(cfg, "train", "steps"));
    CHECK(strcmp(gt_config_where(cfg, "run", "name"), "t.ini:14") == 0, "where run.name");
    CHECK(gt_config_int(cfg, "run", "seed", 0, 0, 100) == 7, "seed");
    CHECK(gt_config_int(cfg, "train", "steps", 1, 1, 1000000) == 300, "steps (inline comment stripped)");
    CHECK(gt_config_int(cfg, "train", "batch_size", 1, 1, 65536) == 64, "batch_size");
    CHECK(gt_config_float(cfg, "train", "lr", 1e-3, 0, 1) == 2e-4, "lr");
    CHECK(gt_config_bool(cfg, "train", "flag", 0) == 1, "flag");
    CHECK(strcmp(gt_config_str(cfg, "train", "path", NULL), "a=b.c") == 0, "value with '=' and '.'");
    CHECK(gt_config_has(cfg, "run", "seed") && !gt_config_has(cfg, "run", "nope"), "has");
    CHECK(strcmp(gt_config_where(cfg, "run", "nope"), "(not set)") == 0, "where of a missing key");

    const char *keys[8];
    int n = gt_config_keys(cfg, "run", keys, 8);
    CHECK(n == 3 && strcmp(keys[0], "dir") == 0 && strcmp(keys[1], "seed") == 0 && strcmp(keys[2], "name") == 0,
          "keys of [run] in order (n=%d)", n);
    CHECK(gt_config_keys(cfg, "train", keys, 2) == 5, "keys count beyond cap");
    CHECK(gt_config_keys(cfg, "none", keys, 8) == 0, "keys of a missing section");

    /* Defaults are recorded with origin "default" and appear in the text. */
    CHECK(gt_config_int(cfg, "train", "epochs", 5, 0, 100) == 5, "int default");
    CHECK(strcmp(gt_config_where(cfg, "train", "epochs"), "default") == 0, "default origin");
    CHECK(gt_config_float(cfg, "optim", "beta1", 0.5, 0, 1) == 0.5, "float default");
    CHECK(gt_config_float(cfg, "optim", "eps", 1e-8, 0, 1) == 1e-8, "float default 1e-8");
    CHECK(gt_config_bool(cfg, "dist", "overlap", 1) == 1, "bool default");
    static const char *const kinds[] = {"adam", "sgd", NULL};
    CHECK(gt_config_choice(cfg, "optim", "kind", "sgd", kinds) == 1, "choice default");
    CHECK(strcmp(gt_config_str(cfg, "log", "file", "x.log"), "x.log") == 0, "str default");
    /* A second read sees the recorded default. */
    CHECK(gt_config_int(cfg, "train", "epochs", 9, 0, 100) == 5, "recorded default is sticky");

    gt_config_touch(cfg, "run", "name");
    gt_config_check_unused(cfg); /* everything was read: must return */

    char *text = gt_config_text(cfg);
    const char *expect =
        "[run]\ndir = runs/x\nseed = 7\nname = again\n\n"
        "[train]\nsteps = 300\nbatch_size = 64\nlr = 2e-4\nflag = yes\npath = a=b.c\nepochs = 5\n\n"
        "[optim]\nbeta1 = 0.5\neps = 1e-08\nkind = sgd\n\n"
        "[dist]\noverlap = true\n\n"
        "[log]\nfile = x.log\n";
    CHECK(strcmp(text, expect) == 0, "text:\n%s\nexpected:\n%s", text, expect);

    /* The text parses back to the same values. */
    gt_config *back = gt_config_parse(text, "text");
    CHECK(strcmp(gt_config_str(back, "train", "lr", NULL), "2e-4") == 0, "round trip lr verbatim");
    CHECK(gt_config_float(back, "optim", "eps", 1, 0, 1) == 1e-8, "round trip eps");
    CHECK(gt_config_int(back, "train", "epochs", 1, 0, 100) == 5, "round trip default");
    CHECK(strcmp(gt_config_where(back, "log", "file"), "text:23") == 0, "round trip line: %s",
          gt_config_where(back, "log", "file"));
    gt_free(text);
    gt_config_free(back);
    gt_config_free(cfg);
}

static void test_strict_values(void) {
    gt_config *cfg = gt_config_parse("[a]\ni1 = -12\ni2 = +3\nf1 = 1e3\nf2 = -0.25\nf3 = 5\n"
                                     "b1 = TRUE\nb2 = off\nb3 = 0\nb4 = On\nc = sgd\n",
                                     "v.ini");
    CHECK(gt_config_int(cfg, "a", "i1", 0, -100, 100) == -12, "negative int");
    CHECK(gt_config_int(cfg, "a", "i2", 0, -100, 100) == 3, "int with +");
    CHECK(gt_config_float(cfg, "a", "f1", 0, 0, 1e4) == 1000.0, "float 1e3");
    CHECK(gt_config_float(cfg, "a", "f2", 0, -1, 1) == -0.25, "negative float");
    CHECK(gt_config_float(cfg, "a", "f3", 0, 0, 10) == 5.0, "integer as float");
    CHECK(gt_config_bool(cfg, "a", "b1", 0) == 1 && gt_config_bool(cfg, "a", "b2", 1) == 0 &&
              gt_config_bool(cfg, "a", "b3", 1) == 0 && gt_config_bool(cfg, "a", "b4", 0) == 1,
          "bool spellings");
    static const char *const kinds[] = {"adam", "sgd", NULL};
    CHECK(gt_config_choice(cfg, "a", "c", "adam", kinds) == 1, "choice");
    gt_config_free(cfg);

    const char *t = "[train]\nsteps = 10\nbatch_size = abc\nlr = 0.1x\nn = 12x\nbig = 70000\n"
                    "flag = maybe\nkind = adagrad\nf = nan\ne = \nh = 1e999\nsp = 1 2\n";
    scen s = {.text = t, .act = ACT_INT, .section = "train", .key = "batch_size", .lo = 1, .hi = 65536};
    expect_error("int abc", run_scen, &s,
                 NEEDLES("t.ini:3: [train] batch_size = \"abc\": expected an integer in [1, 65536]"));
    s.key = "n";
    expect_error("int 12x", run_scen, &s, NEEDLES("t.ini:5: [train] n = \"12x\": expected an integer"));
    s.key = "big";
    expect_error("int out of range", run_scen, &s, NEEDLES("t.ini:6: [train] big = \"70000\"", "[1, 65536]"));
    s.key = "e";
    expect_error("int empty", run_scen, &s, NEEDLES("t.ini:10: [train] e = \"\": expected an integer"));
    s.key = "sp";
    expect_error("int with space", run_scen, &s, NEEDLES("t.ini:12: [train] sp = \"1 2\""));
    s.act = ACT_FLOAT;
    s.lo = 0;
    s.hi = 1;
    s.key = "lr";
    expect_error("float 0.1x", run_scen, &s,
                 NEEDLES("t.ini:4: [train] lr = \"0.1x\": expected a number in [0, 1]"));
    s.key = "f";
    expect_error("float nan", run_scen, &s, NEEDLES("t.ini:9: [train] f = \"nan\""));
    s.key = "h";
    expect_error("float overflow", run_scen, &s, NEEDLES("t.ini:11: [train] h = \"1e999\""));
    s.key = "steps";
    expect_error("float out of range", run_scen, &s, NEEDLES("t.ini:2: [train] steps = \"10\"", "[0, 1]"));
    s.act = ACT_BOOL;
    s.key = "flag";
    expect_error("bool maybe", run_scen, &s, NEEDLES("t.ini:7: [train] flag = \"maybe\": expected true or false"));
    s.act = ACT_CHOICE;
    s.key = "kind";
    expect_error("choice", run_scen, &s,
                 NEEDLES("t.ini:8: [train] kind = \"adagrad\": expected one of: adam, sgd"));
    s.act = ACT_STR;
    s.key = "missing";
    expect_error("required key", run_scen, &s, NEEDLES("t.ini", "[train] missing", "required"));
}

static void test_overrides(void) {
    gt_config *cfg = gt_config_parse("[train]\nsteps = 10\n", "o.ini");
    gt_config_override(cfg, "train.steps=20");
    gt_config_override(cfg, " optim.lr = 1e-3 ");
    gt_config_override(cfg, "data.path=/a/b.c=d");
    gt_config_override(cfg, "train.steps=30"); /* the last one wins */
    CHECK(gt_config_int(cfg, "train", "steps", 1, 1, 100) == 30, "override replaces");
    CHECK(strcmp(gt_config_where(cfg, "train", "steps"), "command line") == 0, "override origin");
    CHECK(gt_config_float(cfg, "optim", "lr", 1, 0, 1) == 1e-3, "override adds, trimmed");
    CHECK(strcmp(gt_config_str(cfg, "data", "path", NULL), "/a/b.c=d") == 0, "override value keeps '=' and '.'");
    const char *keys[4];
    CHECK(gt_config_keys(cfg, "train", keys, 4) == 1, "override of an existing key does not add one");
    gt_config_free(cfg);

    scen s = {.text = "[train]\nsteps = 10\n", .act = ACT_PARSE};
    s.ov[0] = "trainsteps=5";
    expect_error("override without dot", run_scen, &s, NEEDLES("\"trainsteps=5\"", "section.key=value"));
    s.ov[0] = "train.steps";
    expect_error("override without =", run_scen, &s, NEEDLES("\"train.steps\"", "section.key=value"));
    s.ov[0] = "train.=5";
    expect_error("override empty key", run_scen, &s, NEEDLES("\"train.=5\"", "empty key", "section.key=value"));
    s.ov[0] = ".steps=5";
    expect_error("override empty section", run_scen, &s, NEEDLES("\".steps=5\"", "section.key=value"));
    /* A bad override value is reported as coming from the command line. */
    s.ov[0] = "train.steps=many";
    s.act = ACT_INT;
    s.section = "train";
    s.key = "steps";
    s.lo = 1;
    s.hi = 100;
    expect_error("bad override value", run_scen, &s,
                 NEEDLES("command line: [train] steps = \"many\": expected an integer in [1, 100]"));
    /* An override for a key nobody reads is caught as unknown. */
    s.ov[0] = "train.stpes=5";
    s.act = ACT_UNUSED;
    s.reads[0] = "train.steps";
    expect_error("unknown override", run_scen, &s,
                 NEEDLES("command line: unknown key [train] stpes; keys allowed in [train]: steps"));
}

static void test_file_errors(void) {
    scen s = {.act = ACT_PARSE};
    s.text = "[train]\nsteps = 1\nbatch_size = 2\n\nsteps = 3\n";
    expect_error("duplicate key", run_scen, &s, NEEDLES("t.ini:5", "duplicate key [train] steps", "t.ini:2"));
    s.text = "[a]\nx = 1\n[b]\ny = 2\n[a]\nx = 3\n";
    expect_error("duplicate key across repeated section", run_scen, &s, NEEDLES("t.ini:6", "[a] x", "t.ini:2"));
    s.text = "[train]\nsteps = 1\nthis is not ini\n";
    expect_error("syntax error", run_scen, &s, NEEDLES("t.ini:3", "this is not ini"));
    s.text = "[train\nsteps = 1\n";
    expect_error("bad section", run_scen, &s, NEEDLES("t.ini:1", "[train"));
    s.text = "steps = 1\n[train]\n";
    expect_error("key before section", run_scen, &s, NEEDLES("t.ini:1", "steps", "[section]"));
    s.text = "[train]\nsteps = 1\n  batch_size = 2\n";
    expect_error("indented line", run_scen, &s, NEEDLES("t.ini:3", "[train] steps", "continuation"));
    static char longline[400];
    snprintf(longline, sizeof longline, "[a]\nk = %0300d\n", 1);
    s.text = longline;
    expect_error("long line", run_scen, &s, NEEDLES("t.ini:2", "too long"));

    s.act = ACT_LOAD;
    s.text = "/nonexistent/dir/x.ini";
    expect_error("missing file", run_scen, &s, NEEDLES("/nonexistent/dir/x.ini", "No such file"));

    /* Unknown keys: file:line, the key, and the keys that are allowed. */
    s = (scen){.act = ACT_UNUSED,
               .text = "[train]\nsteps = 10\nbatch_size = 4\n\nstesp = 3\n[optim]\nlr = 1\n",
               .reads = {"train.steps", "train.batch_size", "train.epochs", "optim.lr"}};
    expect_error("unknown key", run_scen, &s,
                 NEEDLES("t.ini:5: unknown key [train] stesp; keys allowed in [train]: steps, batch_size, epochs",
                         "did you mean steps?"));
    s = (scen){.act = ACT_UNUSED,
               .text = "[run]\nseed = 1\n[trian]\nsteps = 10\n",
               .reads = {"run.seed", "train.steps", "optim.lr"}};
    expect_error("unknown section", run_scen, &s,
                 NEEDLES("t.ini:4: unknown section [trian]", "known sections: run, train, optim",
                         "did you mean train?"));

    /* Loading a real file names it in messages. */
    char path[] = "/tmp/gentrain_test_config_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    if (fd < 0) return;
    const char *body = "[train]\nsteps = 5\nbatch_size = x\n";
    CHECK(write(fd, body, strlen(body)) == (ssize_t)strlen(body), "write temp file");
    close(fd);
    gt_config *cfg = gt_config_load(path);
    char where[128];
    snprintf(where, sizeof where, "%s:2", path);
    CHECK(strcmp(gt_config_where(cfg, "train", "steps"), where) == 0, "load where");
    gt_config_free(cfg);
    s = (scen){.act = ACT_LOAD, .text = path, .section = "train", .key = "batch_size", .lo = 1, .hi = 10};
    snprintf(where, sizeof where, "%s:3: [train] batch_size = \"x\": expected an integer in [1, 10]", path);
    expect_error("bad value in a loaded file", run_scen, &s, NEEDLES(where));
    CHECK(unlink(path) == 0, "unlink temp file");
}

/* ---- networks from layer lines ----------------------------------------- */

static void test_layer_lines(void) {
    const char *t = "[net]\n"
                    "layer1 = conv2d out=8 kernel=3 stride=2 pad=1 bias=false\n"
                    "layer2 = batchnorm eps=1e-3 momentum=0.2\n"
                    "layer3 = leakyrelu slope=0.1\n"
                    "layer4 = convt2d out=4 kernel=4 stride=2 pad=1 output_pad=0 bias=no\n"
                    "other = not a layer\n"
                    "layer5 = relu\n"
                    "layer10 = dropout p=0.25\n"
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
    gt_config *cfg = gt_config_parse(t, "n.ini");
    gt_net net;
    gt_net_from_config(&net, cfg, "net", (gt_shape){1, 28, 28});
    CHECK(net.n_layers == 17, "layer count %d", net.n_layers);
    if (net.n_layers == 17) {
        gt_layer_spec s;
        s = net.layers[0].spec;
        CHECK(s.kind == GT_CONV2D && s.out == 8 && s.kernel == 3 && s.stride == 2 && s.pad == 1 && s.bias == 0,
              "conv2d spec");
        CHECK(net.layers[0].out.c == 8 && net.layers[0].out.h == 14 && net.layers[0].out.w == 14, "conv2d shape");
        s = net.layers[1].spec;
        CHECK(s.kind == GT_BATCHNORM && s.eps == 1e-3f && s.momentum == 0.2f, "batchnorm spec");
        s = net.layers[2].spec;
        CHECK(s.kind == GT_LEAKYRELU && s.slope == 0.1f, "leakyrelu spec");
        s = net.layers[3].spec;
        CHECK(s.kind == GT_CONVT2D && s.out == 4 && s.kernel == 4 && s.stride == 2 && s.pad == 1 &&
                  s.output_pad == 0 && s.bias == 0,
              "convt2d spec");
        CHECK(net.layers[3].out.c == 4 && net.layers[3].out.h == 28, "convt2d shape");
        CHECK(net.layers[4].spec.kind == GT_RELU, "relu (layer5)");
        CHECK(net.layers[5].spec.kind == GT_SIGMOID, "sigmoid (layer7 before layer10)");
        CHECK(net.layers[6].spec.kind == GT_TANH, "tanh (layer8)");
        s = net.layers[7].spec;
        CHECK(s.kind == GT_DROPOUT && s.p == 0.25f, "dropout spec (layer10)");
        s = net.layers[8].spec;
        CHECK(s.kind == GT_RESHAPE && s.reshape.c == 0 && s.reshape.h == 0 && s.reshape.w == 0, "flatten spec");
        CHECK(net.layers[8].out.c == 4 * 28 * 28 && net.layers[8].out.h == 1, "flatten shape");
        s = net.layers[9].spec;
        CHECK(s.kind == GT_DENSE && s.out == 7 && s.bias == 1, "dense spec with default bias");
        s = net.layers[10].spec;
        CHECK(s.kind == GT_RESHAPE && s.reshape.c == 7 && s.reshape.h == 1 && s.reshape.w == 1, "reshape spec");
        s = net.layers[11].spec;
        CHECK(s.kind == GT_CONV2D && s.kernel == 1 && s.stride == 1 && s.pad == 0 && s.bias == 1,
              "conv2d defaults");
        s = net.layers[12].spec;
        CHECK(s.kind == GT_DENSE && s.out == 5 && s.bias == 0, "dense bias=false");
        s = net.layers[13].spec;
        CHECK(s.kind == GT_RESHAPE && s.reshape.c == 5 && s.reshape.h == 1 && s.reshape.w == 1, "reshape shape=N");
        gt_layer_spec d = gt_layer_spec_default(GT_LEAKYRELU);
        CHECK(net.layers[14].spec.slope == d.slope, "leakyrelu default slope");
        d = gt_layer_spec_default(GT_BATCHNORM);
        CHECK(net.layers[15].spec.eps == d.eps && net.layers[15].spec.momentum == d.momentum, "batchnorm defaults");
        d = gt_layer_spec_default(GT_DROPOUT);
        CHECK(net.layers[16].spec.p == d.p, "dropout default p");
        CHECK(net.out.c == 5 && net.out.h == 1 && net.out.w == 1, "net output shape");
    }
    gt_net_finalize(&net, 2, 1, 0);
    gt_net_free(&net);
    /* Layer keys are used; other keys of the section are left unread. */
    const char *keys[32];
    int n = gt_config_keys(cfg, "net", keys, 32);
    CHECK(n == 18, "keys in [net]: %d", n);
    CHECK(strcmp(gt_config_where(cfg, "net", "layer10"), "n.ini:8") == 0, "where of layer10");
    gt_config_free(cfg);

    /* The kind names of layer lines are nn's names (as in checkpoints). */
    static const char *const names[] = {"dense", "conv2d", "convt2d", "batchnorm", "relu",
                                        "leakyrelu", "tanh", "sigmoid", "dropout", "reshape"};
    static const gt_layer_kind ks[] = {GT_DENSE, GT_CONV2D,  GT_CONVT2D, GT_BATCHNORM, GT_RELU,
                                       GT_LEAKYRELU, GT_TANH, GT_SIGMOID, GT_DROPOUT,  GT_RESHAPE};
    for (int i = 0; i < 10; i++)
        CHECK(gt_layer_kind_from_name(names[i]) == (int)ks[i] && strcmp(gt_layer_kind_name(ks[i]), names[i]) == 0,
              "layer kind name %s", names[i]);

    /* Error cases: each names file:line, [section] key and the line. */
    scen s = {.act = ACT_NET, .section = "g"};
    s.text = "[g]\nlayer1 = flatten\nlayer2 = dens out=3\n";
    expect_error("unknown kind", run_scen, &s,
                 NEEDLES("t.ini:3: [g] layer2 = \"dens out=3\"", "unknown layer kind \"dens\"",
                         "dense, conv2d, convt2d, batchnorm, relu, leakyrelu, tanh, sigmoid, dropout, reshape, "
                         "flatten"));
    s.text = "[g]\nlayer1 = conv2d out=4 kernel=3 strides=2\n";
    expect_error("unknown option", run_scen, &s,
                 NEEDLES("t.ini:2: [g] layer1 = ", "unknown option \"strides\"", "out=N", "kernel=K", "stride=S",
                         "pad=P", "bias=true|false"));
    s.text = "[g]\nlayer1 = relu slope=0.2\n";
    expect_error("option of an option-less kind", run_scen, &s,
                 NEEDLES("t.ini:2", "unknown option \"slope\"", "relu takes no options"));
    s.text = "[g]\nlayer1 = dense out=abc\n";
    expect_error("bad int option", run_scen, &s,
                 NEEDLES("t.ini:2: [g] layer1 = \"dense out=abc\"", "out=abc", "integer >= 1"));
    s.text = "[g]\nlayer1 = dense out=0\n";
    expect_error("zero out", run_scen, &s, NEEDLES("t.ini:2", "out=0", "integer >= 1"));
    s.text = "[g]\nlayer1 = conv2d out=4 kernel=3 pad=-1\n";
    expect_error("negative pad", run_scen, &s, NEEDLES("t.ini:2", "pad=-1", "integer >= 0"));
    s.text = "[g]\nlayer1 = dense out=4 bias=maybe\n";
    expect_error("bad bool option", run_scen, &s, NEEDLES("t.ini:2", "bias=maybe", "true|false"));
    s.text = "[g]\nlayer1 = flatten\nlayer2 = dropout p=1.0\n";
    expect_error("dropout p=1", run_scen, &s, NEEDLES("t.ini:3", "p=1.0", "[0, 1)"));
    s.text = "[g]\nlayer1 = flatten\nlayer2 = batchnorm eps=0\n";
    expect_error("bn eps=0", run_scen, &s, NEEDLES("t.ini:3", "eps=0"));
    s.text = "[g]\nlayer1 = leakyrelu slope=x\n";
    expect_error("bad float option", run_scen, &s, NEEDLES("t.ini:2", "slope=x"));
    s.text = "[g]\nlayer1 = reshape shape=2x2\n";
    expect_error("bad shape", run_scen, &s, NEEDLES("t.ini:2", "shape=2x2", "CxHxW"));
    s.text = "[g]\nlayer1 = reshape\n";
    expect_error("missing shape", run_scen, &s, NEEDLES("t.ini:2", "missing option shape=CxHxW"));
    s.text = "[g]\nlayer1 = dense bias=false\n";
    expect_error("missing out", run_scen, &s, NEEDLES("t.ini:2", "missing option out=N"));
    s.text = "[g]\nlayer1 = conv2d out=3\n";
    expect_error("missing kernel", run_scen, &s, NEEDLES("t.ini:2", "missing option kernel=K"));
    s.text = "[g]\nlayer1 = dense out=3 out=4\n";
    expect_error("option twice", run_scen, &s, NEEDLES("t.ini:2", "out given twice"));
    s.text = "[g]\nlayer1 = dense 3\n";
    expect_error("not opt=value", run_scen, &s, NEEDLES("t.ini:2", "\"3\" is not opt=value"));
    s.text = "[g]\nlayer1 =\n";
    expect_error("empty layer", run_scen, &s, NEEDLES("t.ini:2", "empty layer"));
    s.text = "[g]\nlayer1 = relu\nlayer01 = tanh\n";
    expect_error("same layer number twice", run_scen, &s, NEEDLES("t.ini:3", "layer01", "layer1", "t.ini:2"));
    s.text = "[g]\nlayer0 = relu\n";
    expect_error("layer0", run_scen, &s, NEEDLES("t.ini:2", "layer0", "positive"));
    s.text = "[g]\nsize = 3\n";
    expect_error("no layers", run_scen, &s, NEEDLES("[g]", "no layers", "layer1"));
    /* A layer that does not fit: gt_net_add's reason, with file:line. */
    s.text = "[g]\nlayer1 = flatten\nlayer2 = reshape shape=3x5x5\n";
    expect_error("reshape that does not fit", run_scen, &s, NEEDLES("t.ini:3: [g] layer2 = \"reshape shape=3x5x5\": "));
}

/* Child: builds [g] then checks unused keys. */
static void net_then_unused(const void *arg) {
    gt_config *cfg = gt_config_parse(arg, "t.ini");
    gt_net net;
    gt_net_from_config(&net, cfg, "g", (gt_shape){3, 1, 1});
    gt_config_check_unused(cfg);
}

/* ---- the shipped configs ----------------------------------------------- */

static size_t dense_p(size_t in, size_t out, int bias) { return in * out + (bias ? out : 0); }
static size_t conv_p(size_t in, size_t out, size_t k, int bias) { return in * out * k * k + (bias ? out : 0); }

typedef struct {
    const char *name;
    const char *sections[2];
    size_t params[2];
} expected_cfg;

static void build_check(gt_config *cfg, const char *file, const char *section, gt_shape in, gt_shape want_out,
                        size_t want_params) {
    gt_net net;
    gt_net_from_config(&net, cfg, section, in);
    CHECK(net.out.c == want_out.c && net.out.h == want_out.h && net.out.w == want_out.w,
          "%s [%s]: output %dx%dx%d, expected %dx%dx%d", file, section, net.out.c, net.out.h, net.out.w,
          want_out.c, want_out.h, want_out.w);
    gt_net_finalize(&net, 2, 1, 0);
    CHECK(net.n_params == want_params, "%s [%s]: %zu parameters, expected %zu", file, section, net.n_params,
          want_params);
    gt_net_free(&net);
}

static void test_shipped_configs(void) {
    const char *src = getenv("GENTRAIN_SOURCE_DIR");
    if (!src) src = ".";
    const size_t G_dcgan = dense_p(100, 12544, 0) + 2 * 12544 + conv_p(256, 128, 4, 0) + 2 * 128 +
                           conv_p(128, 64, 4, 0) + 2 * 64 + conv_p(64, 1, 3, 1);
    const size_t D_dcgan = conv_p(1, 64, 4, 1) + conv_p(64, 128, 4, 1) + dense_p(6272, 1, 1);
    const expected_cfg table[] = {
        {"dcgan", {"generator", "discriminator"}, {G_dcgan, D_dcgan}},
        {"vae",
         {"encoder", "decoder"},
         {conv_p(1, 32, 4, 1) + conv_p(32, 64, 4, 1) + dense_p(3136, 256, 1) + dense_p(256, 40, 1),
          dense_p(20, 256, 1) + dense_p(256, 3136, 1) + conv_p(64, 32, 4, 1) + conv_p(32, 1, 4, 1)}},
        {"mlpvae",
         {"encoder", "decoder"},
         {dense_p(784, 400, 1) + dense_p(400, 40, 1), dense_p(20, 400, 1) + dense_p(400, 784, 1)}},
        {"mlpgan",
         {"generator", "discriminator"},
         {dense_p(100, 256, 1) + dense_p(256, 512, 1) + dense_p(512, 1024, 1) + dense_p(1024, 784, 1),
          dense_p(784, 512, 1) + dense_p(512, 256, 1) + dense_p(256, 1, 1)}},
        {"toygan",
         {"generator", "discriminator"},
         {dense_p(16, 400, 1) + 3 * dense_p(400, 400, 1) + 4 * 2 * 400 + dense_p(400, 2, 1),
          dense_p(2, 200, 1) + 2 * dense_p(200, 200, 1) + dense_p(200, 1, 1)}},
        {"toyvae",
         {"encoder", "decoder"},
         {dense_p(2, 128, 1) + dense_p(128, 128, 1) + dense_p(128, 4, 1),
          dense_p(2, 128, 1) + dense_p(128, 128, 1) + dense_p(128, 2, 1)}},
        {"classifier",
         {"classifier", NULL},
         {conv_p(1, 32, 3, 1) + conv_p(32, 32, 4, 1) + conv_p(32, 64, 4, 1) + dense_p(3136, 128, 1) +
              dense_p(128, 10, 1),
          0}},
    };
    CHECK(G_dcgan == 1935809 && D_dcgan == 138561, "dcgan counts by hand: %zu %zu", G_dcgan, D_dcgan);
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
        gt_config *cfg = gt_config_load(path);
        char want_dir[300];
        snprintf(want_dir, sizeof want_dir, "runs/%s", name);
        CHECK(strcmp(gt_config_str(cfg, "run", "dir", NULL), want_dir) == 0, "%s: run.dir", path);
        gt_config_int(cfg, "run", "seed", 0, 0, 1l << 40);
        static const char *const types[] = {"gan", "vae", "classifier", NULL};
        int type = gt_config_choice(cfg, "model", "type", NULL, types);
        static const char *const data_kinds[] = {"fashion-mnist", "toy", NULL};
        int data_kind = gt_config_choice(cfg, "data", "kind", NULL, data_kinds);
        gt_shape data = data_kind == 0 ? (gt_shape){1, 28, 28} : (gt_shape){2, 1, 1};
        CHECK(gt_config_int(cfg, "train", "steps", 1, 1, 1000000) <= 5000, "%s: short default run", path);
        gt_config_int(cfg, "train", "batch_size", 64, 1, 65536);
        int z = type == 2 ? 0 : (int)gt_config_int(cfg, "model", "z_dim", 1, 1, 4096);
        const expected_cfg *e = NULL;
        for (int i = 0; i < n_expected; i++)
            if (strcmp(table[i].name, name) == 0) e = &table[i], seen[i] = 1;
        CHECK(e != NULL, "%s: a config the test does not know; add its expected sizes", path);
        if (e) {
            if (type == 0) {
                build_check(cfg, path, "generator", (gt_shape){z, 1, 1}, data, e->params[0]);
                build_check(cfg, path, "discriminator", data, (gt_shape){1, 1, 1}, e->params[1]);
            } else if (type == 1) {
                build_check(cfg, path, "encoder", data, (gt_shape){2 * z, 1, 1}, e->params[0]);
                build_check(cfg, path, "decoder", (gt_shape){z, 1, 1}, data, e->params[1]);
            } else {
                build_check(cfg, path, "classifier", data, (gt_shape){10, 1, 1}, e->params[0]);
            }
        }
        /* The text of a shipped config parses back. */
        char *text = gt_config_text(cfg);
        gt_config *back = gt_config_parse(text, "text");
        CHECK(gt_config_keys(back, "run", NULL, 0) == gt_config_keys(cfg, "run", NULL, 0), "%s: text round trip",
              path);
        gt_config_free(back);
        gt_free(text);
        gt_config_free(cfg);
    }
    if (closedir(d) != 0) perror("closedir");
    CHECK(n_files >= n_expected, "found %d config files in %s, expected %d", n_files, dir, n_expected);
    for (int i = 0; i < n_expected; i++) CHECK(seen[i], "configs/%s.ini is missing", table[i].name);

    /* The DCGAN's layer table is design.md's exactly. */
    char path[8192];
    snprintf(path, sizeof path, "%s/configs/dcgan.ini", src);
    gt_config *cfg = gt_config_load(path);
    gt_net g;
    gt_net_from_config(&g, cfg, "generator", (gt_shape){100, 1, 1});
    static const gt_layer_kind gk[] = {GT_DENSE,     GT_BATCHNORM, GT_LEAKYRELU, GT_RESHAPE,
                                       GT_CONVT2D,   GT_BATCHNORM, GT_LEAKYRELU, GT_CONVT2D,
                                       GT_BATCHNORM, GT_LEAKYRELU, GT_CONV2D,    GT_TANH};
    CHECK(g.n_layers == 12, "dcgan G layers %d", g.n_layers);
    for (int i = 0; i < g.n_layers && i < 12; i++) CHECK(g.layers[i].spec.kind == gk[i], "dcgan G layer %d", i);
    if (g.n_layers == 12) {
        CHECK(g.layers[0].spec.bias == 0 && g.layers[4].spec.bias == 0 && g.layers[7].spec.bias == 0 &&
                  g.layers[10].spec.bias == 1,
              "dcgan G biases");
        CHECK(g.layers[2].spec.slope == 0.2f, "dcgan slope");
        CHECK(g.layers[3].out.c == 256 && g.layers[3].out.h == 7, "dcgan reshape");
        CHECK(g.layers[4].out.c == 128 && g.layers[4].out.h == 14, "dcgan convt1 shape");
    }
    gt_net_finalize(&g, 2, 1, 0);
    gt_net_free(&g);
    gt_config_free(cfg);
}

int main(void) {
    test_parse_and_getters();
    test_strict_values();
    test_overrides();
    test_file_errors();
    test_layer_lines();
    expect_error("non-layer key stays unused", net_then_unused,
                 "[g]\nlayer1 = relu\nwidth = 3\nlayer2 = tanh\n",
                 NEEDLES("t.ini:3: unknown key [g] width; keys allowed in [g]: layer1, layer2"));
    test_shipped_configs();
    return check_report("test_config");
}
