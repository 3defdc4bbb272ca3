/* Weight initialization (src/nn/net.c, nn.h gt_init): the statistics of
 * every scheme on dense, conv2d and convt2d weights (PyTorch's fans: a
 * ConvTranspose2d weight [in,out,K,K] has fan_in out*K*K) and on batch-norm
 * scales, against their closed forms: mean, standard deviation and bounds.
 * The same statistics against torch.nn.init itself: tests/init_parity.py
 * (in tests/parity.sh). */
#include "check.h"
#include "gradcheck.h"

typedef struct {
    double mean, std, maxabs;
    size_t n;
} moments;

static moments stats_of(const float *x, size_t n) {
    moments m = {0, 0, 0, n};
    for (size_t i = 0; i < n; i++) m.mean += x[i];
    m.mean /= (double)n;
    for (size_t i = 0; i < n; i++) {
        m.std += (x[i] - m.mean) * (x[i] - m.mean);
        m.maxabs = fmax(m.maxabs, fabs(x[i]));
    }
    m.std = sqrt(m.std / (double)(n - 1));
    return m;
}

/* Sample mean and standard deviation within 5 standard errors of mean and
 * std (normal: se(std) = std/sqrt(2n); uniform: std sqrt(0.8/(4n)) would be
 * smaller, 1/sqrt(2n) is a safe bound). */
static void check_moments(const char *what, const float *x, size_t n, double mean, double std) {
    moments m = stats_of(x, n);
    double se_mean = std / sqrt((double)n), se_std = std / sqrt(2.0 * (double)n);
    CHECK(fabs(m.mean - mean) <= 5 * se_mean + 1e-7, "%s: mean %.6g, expected %.6g (+-%.2g)", what, m.mean, mean,
          5 * se_mean);
    CHECK(fabs(m.std - std) <= 5 * se_std + 1e-7, "%s: std %.6g, expected %.6g (+-%.2g)", what, m.std, std,
          5 * se_std);
}

static void check_uniform(const char *what, const float *x, size_t n, double a) {
    check_moments(what, x, n, 0.0, a / sqrt(3.0));
    moments m = stats_of(x, n);
    CHECK(m.maxabs <= a * (1 + 1e-6) && m.maxabs >= a * (1 - 20.0 / (double)n), "%s: max |w| %.6g, bound %.6g", what,
          m.maxabs, a);
}

static void check_all(const float *x, size_t n, float v, const char *what) {
    int ok = 1;
    for (size_t i = 0; i < n; i++) ok &= x[i] == v;
    CHECK(ok, "%s: every element is %g", what, (double)v);
}

/* A network with one layer of each kind (and a batch norm after the first). */
static void build(gt_net *net, gt_init init, uint64_t seed) {
    gt_net_init(net, "init", (gt_shape){16, 8, 8});
    add(net, "conv2d out=32 kernel=4 stride=2 pad=1");   /* [32,16,4,4]: fan_in 256, fan_out 512 */
    add(net, "batchnorm");                               /* scale [32] */
    add(net, "convt2d out=16 kernel=4 stride=2 pad=1");  /* [32,16,4,4]: fan_in 16*16 = 256, fan_out 512 */
    add(net, "flatten");
    add(net, "dense out=200");                           /* [200, 1024]: fan_in 1024, fan_out 200 */
    net->init = init;
    gt_net_finalize(net, 2, seed, 0);
}

int main(void) {
    static const char *const names[] = {"pytorch", "normal", "xavier", "kaiming"};
    for (int s = GT_INIT_PYTORCH; s <= GT_INIT_KAIMING; s++) {
        gt_init init = {(gt_init_scheme)s, 0.05};
        gt_net net;
        build(&net, init, 7);
        gt_tensor_ref r[16];
        int n = gt_net_tensors(&net, r, 16);
        CHECK(n == 10, "%d tensors", n);
        /* conv weight 0, bias 1; bn weight 2, bias 3, mean 4, var 5; convt weight 6, bias 7; dense weight 8, bias 9 */
        struct { int t; double fan_in, fan_out; size_t numel; const char *what; } w[] = {
            {0, 256, 512, 32 * 16 * 16, "conv2d weight"},
            {6, 256, 512, 32 * 16 * 16, "convt2d weight"},
            {8, 1024, 200, 200 * 1024, "dense weight"},
        };
        char what[128];
        for (int i = 0; i < 3; i++) {
            snprintf(what, sizeof what, "%s: %s", names[s], w[i].what);
            if (s == GT_INIT_PYTORCH) check_uniform(what, r[w[i].t].data, w[i].numel, 1.0 / sqrt(w[i].fan_in));
            if (s == GT_INIT_NORMAL) check_moments(what, r[w[i].t].data, w[i].numel, 0.0, 0.05);
            if (s == GT_INIT_XAVIER) check_uniform(what, r[w[i].t].data, w[i].numel, sqrt(6.0 / (w[i].fan_in + w[i].fan_out)));
            if (s == GT_INIT_KAIMING) check_moments(what, r[w[i].t].data, w[i].numel, 0.0, sqrt(2.0 / w[i].fan_in));
            /* the bias that follows the weight */
            snprintf(what, sizeof what, "%s: the bias after the %s", names[s], w[i].what);
            size_t nb = (size_t)r[w[i].t + 1].dims[0];
            if (s == GT_INIT_PYTORCH) {
                moments m = stats_of(r[w[i].t + 1].data, nb);
                CHECK(m.maxabs <= 1.0 / sqrt(w[i].fan_in) && m.maxabs > 0, "%s: max |b| %g", what, m.maxabs);
            } else {
                check_all(r[w[i].t + 1].data, nb, 0.0f, what);
            }
        }
        snprintf(what, sizeof what, "%s: batchnorm weight", names[s]);
        if (s == GT_INIT_NORMAL) {
            /* 32 values: a loose check, and a larger layer below */
            moments m = stats_of(r[2].data, 32);
            CHECK(fabs(m.mean - 1) < 0.05 && m.std > 0.02 && m.std < 0.09, "%s: mean %g std %g", what, m.mean, m.std);
        } else {
            check_all(r[2].data, 32, 1.0f, what);
        }
        check_all(r[3].data, 32, 0.0f, "batchnorm bias");
        check_all(r[4].data, 32, 0.0f, "batchnorm running_mean");
        check_all(r[5].data, 32, 1.0f, "batchnorm running_var");
        gt_net_free(&net);
    }

    /* normal: batch-norm (and layer-norm) scales N(1, std) on a large layer */
    {
        gt_net net;
        gt_net_init(&net, "bn", (gt_shape){20000, 1, 1});
        add(&net, "batchnorm");
        add(&net, "layernorm");
        net.init = (gt_init){GT_INIT_NORMAL, 0.02};
        gt_net_finalize(&net, 2, 3, 1);
        check_moments("normal: batchnorm weight", net.params, 20000, 1.0, 0.02);
        check_all(net.params + 20000, 20000, 0.0f, "normal: batchnorm bias");
        check_moments("normal: layernorm weight", net.params + 40000, 20000, 1.0, 0.02);
        gt_net_free(&net);
    }

    /* the draws come from the documented stream, whatever the scheme: the
     * same seed gives the same weights, another seed others; pytorch and
     * xavier share the uniform draws (scaled differently) */
    {
        gt_net a, b, c;
        build(&a, (gt_init){GT_INIT_PYTORCH, 0}, 7);
        build(&b, (gt_init){GT_INIT_XAVIER, 0}, 7);
        build(&c, (gt_init){GT_INIT_PYTORCH, 0}, 8);
        double ratio = a.params[0] / b.params[0], worst = 0;
        for (size_t i = 0; i < 32 * 16 * 16; i++) worst = fmax(worst, fabs(a.params[i] - ratio * b.params[i]));
        CHECK(worst < 1e-6 && fabs(ratio - (1.0 / 16) / sqrt(6.0 / 768)) < 1e-5,
              "pytorch and xavier draw the same uniforms (ratio %g, worst %g)", ratio, worst);
        CHECK(memcmp(a.params, c.params, sizeof(float) * 16) != 0, "another seed, other weights");
        gt_net_free(&a);
        gt_net_free(&b);
        gt_net_free(&c);
    }
    return check_report("test_init");
}
