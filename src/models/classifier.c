/* Classifier: net[0] = [data] -> [n_classes] logits, cross-entropy, on
 * pixels in [0, 1]. Its penultimate layer gives the features of gentrain's
 * evaluation metrics. */
#include "gentrain/model.h"

#include <string.h>

static void net_shapes(const gt_model *m, int k, gt_shape *in, gt_shape *out, const char **what) {
    (void)k;
    *in = m->data_shape;
    *out = (gt_shape){m->n_classes, 1, 1};
    *what = "the number of classes";
}

static size_t work_floats(const gt_model *m, int B) { return (size_t)B * (size_t)m->n_classes; }

static double accuracy(const float *logits, const int *labels, int B, int K) {
    int right = 0;
    for (int i = 0; i < B; i++) {
        int best = 0;
        for (int k = 1; k < K; k++)
            if (logits[(size_t)i * K + k] > logits[(size_t)i * K + best]) best = k;
        right += best == labels[i];
    }
    return (double)right / B;
}

static void step(gt_model *m, const float *x, const int *labels, int B, const gt_step_ctx *ctx, int train,
                 gt_stats *st) {
    GT_ASSERT(labels, "the classifier needs labels");
    gt_net *C = &m->net[0];
    const float *logits = gt_net_forward(C, x, B, train, gt_model_rng(ctx, 0));
    double loss = gt_cross_entropy(logits, labels, B, m->n_classes, train ? m->work : NULL);
    double acc = accuracy(logits, labels, B, m->n_classes);
    if (train) {
        gt_net_zero_grads(C);
        gt_net_backward(C, m->work, GT_BACKWARD_PARAMS, ctx->ready);
        gt_model_update(C, &m->opt[0], ctx);
    }
    gt_stats_add_net(st, "loss", loss, 0);
    gt_stats_add_net(st, "accuracy", acc, 0);
}

static void train_step(gt_model *m, const float *x, const int *labels, int B, const gt_step_ctx *ctx,
                       gt_stats *st) {
    step(m, x, labels, B, ctx, 1, st);
}

static void evaluate(gt_model *m, const float *x, const int *labels, int B, const gt_step_ctx *ctx, gt_stats *st) {
    step(m, x, labels, B, ctx, 0, st);
}

/* The input of the last layer: the output of the one before it (the data for a one-layer net). */
static int feature_dim(const gt_model *m) { return (int)gt_shape_size(m->net[0].layers[m->net[0].n_layers - 1].in); }

static void features(gt_model *m, const float *x, int n, float *feat, float *logits) {
    gt_net *C = &m->net[0];
    size_t data = gt_shape_size(m->data_shape), F = (size_t)feature_dim(m), K = (size_t)m->n_classes;
    gt_rng_ctx rng = {0, 0, 0, 1, 0};
    for (int i = 0; i < n; i += m->max_batch) {
        int B = n - i < m->max_batch ? n - i : m->max_batch;
        const float *out = gt_net_forward(C, x + (size_t)i * data, B, 0, rng);
        const float *f = C->n_layers > 1 ? C->layers[C->n_layers - 2].y : x + (size_t)i * data;
        if (feat) memcpy(feat + (size_t)i * F, f, sizeof(float) * (size_t)B * F);
        if (logits) memcpy(logits + (size_t)i * K, out, sizeof(float) * (size_t)B * K);
    }
}

const gt_model_kind_info gt_model_classifier = {
    .name = "classifier",
    .n_nets = 1,
    .net_names = {"classifier"},
    .scale = GT_SCALE_UNIT,
    .net_shapes = net_shapes,
    .work_floats = work_floats,
    .train_step = train_step,
    .evaluate = evaluate,
    .feature_dim = feature_dim,
    .features = features,
};
