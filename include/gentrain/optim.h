/* Optimizers over one flat parameter buffer and its gradient buffer:
 * one loop each. Adam follows torch.optim.Adam (bias-corrected, weight decay
 * added to the gradient as L2); SGD follows torch.optim.SGD with momentum
 * (dampening 0, no Nesterov). */
#ifndef GENTRAIN_OPTIM_H
#define GENTRAIN_OPTIM_H

#include <stddef.h>
#include <stdint.h>

typedef enum { GT_OPT_ADAM, GT_OPT_SGD } gt_opt_kind;

/* The settings of one network's optimizer ([optim] in a config). */
typedef struct {
    gt_opt_kind kind;
    double lr, beta1, beta2, eps, weight_decay; /* SGD: beta1 is the momentum */
} gt_optim_opts;

typedef struct {
    gt_opt_kind kind;
    float lr, beta1, beta2, eps, weight_decay; /* SGD uses beta1 as its momentum */
    size_t n;
    int64_t t;    /* steps taken */
    float *m, *v; /* Adam first and second moments; SGD momentum buffer in m; v unused by SGD */
    size_t bytes; /* what gt_optim_init allocated (m and v) */
} gt_optim;

void gt_optim_init(gt_optim *opt, const gt_optim_opts *o, size_t n);
void gt_optim_step(gt_optim *opt, float *params, const float *grads);
void gt_optim_free(gt_optim *opt);

#endif
