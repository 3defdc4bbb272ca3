/* Adam and SGD with momentum over one flat parameter buffer
 * (include/gentrain/optim.h).
 *
 * Both follow PyTorch 1.13's single-tensor (foreach=False) code path: the
 * per-element arithmetic is done in float in the same order, with the same
 * fused multiply-adds, as the tensor ops there, and the scalar coefficients
 * (bias corrections, step size, 1 - beta) are computed in double from the
 * decimal values, as Python does, and rounded to float once. Against
 * torch.optim.Adam/SGD(foreach=False) on an AVX2 machine this is bit-exact. */
#include "gentrain/optim.h"

#include "gentrain/core.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gt_optim_init(gt_optim *opt, const gt_optim_opts *o, size_t n) {
    gt_opt_kind kind = o->kind;
    float lr = (float)o->lr, beta1 = (float)o->beta1, beta2 = (float)o->beta2, eps = (float)o->eps,
          weight_decay = (float)o->weight_decay;
    GT_ASSERT(opt != NULL, "gt_optim_init: NULL optimizer");
    GT_ASSERT(n > 0, "gt_optim_init: no parameters (n = 0)");
    GT_ASSERT(isfinite(lr) && lr >= 0.0f, "optimizer: learning rate %g must be finite and >= 0", (double)lr);
    GT_ASSERT(isfinite(weight_decay) && weight_decay >= 0.0f, "optimizer: weight decay %g must be finite and >= 0",
             (double)weight_decay);
    memset(opt, 0, sizeof *opt);
    opt->kind = kind;
    opt->n = n;
    opt->lr = lr;
    opt->beta1 = beta1;
    opt->beta2 = beta2;
    opt->eps = eps;
    opt->weight_decay = weight_decay;
    opt->t = 0;
    switch (kind) {
    case GT_OPT_ADAM:
        GT_ASSERT(beta1 >= 0.0f && beta1 < 1.0f, "Adam: beta1 = %g must be in [0, 1)", (double)beta1);
        GT_ASSERT(beta2 >= 0.0f && beta2 < 1.0f, "Adam: beta2 = %g must be in [0, 1)", (double)beta2);
        GT_ASSERT(eps >= 0.0f && isfinite(eps), "Adam: eps = %g must be finite and >= 0", (double)eps);
        opt->m = gt_alloc_floats(n);
        opt->v = gt_alloc_floats(n);
        opt->bytes = 2 * n * sizeof(float);
        break;
    case GT_OPT_SGD:
        GT_ASSERT(beta1 >= 0.0f && isfinite(beta1), "SGD: momentum (beta1) = %g must be finite and >= 0",
                 (double)beta1);
        opt->m = gt_alloc_floats(n); /* momentum buffer; unused when momentum is 0 */
        opt->v = NULL;
        opt->bytes = n * sizeof(float);
        break;
    default:
        gt_panic("gt_optim_init: unknown optimizer kind %d", (int)kind);
    }
}

/* The value the user wrote: the shortest decimal that rounds to x, as a
 * double. PyTorch computes its bias corrections and 1 - beta in double from
 * the Python float (e.g. 0.9, not 0.9f = 0.899999976), so doing the same
 * keeps the scalar coefficients identical to the last bit. */
static double as_decimal(float x) {
    char buf[32];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)x);
        if (strtof(buf, NULL) == x) return strtod(buf, NULL);
    }
    return (double)x;
}

/* PyTorch 1.13's CPU kernels (AVX2 build) compute add(a, b, alpha) and
 * addcmul(a, b, c, value) with a fused multiply-add: a + alpha*b rounds once.
 * fmaf() gives the same rounding everywhere; the loops are compiled twice so
 * that CPUs with FMA get the instruction instead of a libm call. */
typedef struct {
    float beta1, one_minus_b1, beta2, one_minus_b2, bias_c2_sqrt, neg_step, eps, wd;
} adam_coef;

/* p, grad, m, v: [n] */
static inline __attribute__((always_inline)) void adam_loop_body(size_t n, float *restrict p,
                                                                 const float *restrict grad, float *restrict m,
                                                                 float *restrict v, adam_coef c) {
    for (size_t i = 0; i < n; i++) {
        float g = grad[i];
        if (c.wd != 0.0f) g = fmaf(p[i], c.wd, g);          /* grad.add(param, alpha=wd) */
        float mi = fmaf(g, c.one_minus_b1, m[i] * c.beta1);  /* exp_avg.mul_(b1).add_(grad, alpha=1-b1) */
        float vi = fmaf(c.one_minus_b2 * g, g, v[i] * c.beta2); /* exp_avg_sq.mul_(b2).addcmul_(g, g, value=1-b2) */
        float denom = sqrtf(vi) / c.bias_c2_sqrt + c.eps;   /* (exp_avg_sq.sqrt() / bc2_sqrt).add_(eps) */
        p[i] = p[i] + c.neg_step * mi / denom;              /* param.addcdiv_(exp_avg, denom, value=-step) */
        m[i] = mi;
        v[i] = vi;
    }
}

/* p, grad, buf: [n]; first = this is the first step (buf = d_p) */
static inline __attribute__((always_inline)) void sgd_loop_body(size_t n, float *restrict p,
                                                                const float *restrict grad, float *restrict buf,
                                                                float mom, float neg_lr, float wd, int first) {
    for (size_t i = 0; i < n; i++) {
        float g = grad[i];
        if (wd != 0.0f) g = fmaf(p[i], wd, g); /* d_p.add(param, alpha=wd) */
        if (mom != 0.0f) {
            float b = first ? g : buf[i] * mom + g; /* clone(d_p) / buf.mul_(momentum).add_(d_p) */
            buf[i] = b;
            g = b;
        }
        p[i] = fmaf(g, neg_lr, p[i]); /* param.add_(d_p, alpha=-lr) */
    }
}

static void adam_loop_generic(size_t n, float *p, const float *grad, float *m, float *v, adam_coef c) {
    adam_loop_body(n, p, grad, m, v, c);
}
static void sgd_loop_generic(size_t n, float *p, const float *grad, float *buf, float mom, float neg_lr, float wd,
                             int first) {
    sgd_loop_body(n, p, grad, buf, mom, neg_lr, wd, first);
}

#if defined(__GNUC__) && defined(__x86_64__)
#define GT_HAVE_FMA_PATH 1
__attribute__((target("fma"))) static void adam_loop_fma(size_t n, float *p, const float *grad, float *m, float *v,
                                                         adam_coef c) {
    adam_loop_body(n, p, grad, m, v, c);
}
__attribute__((target("fma"))) static void sgd_loop_fma(size_t n, float *p, const float *grad, float *buf,
                                                        float mom, float neg_lr, float wd, int first) {
    sgd_loop_body(n, p, grad, buf, mom, neg_lr, wd, first);
}
static int have_fma(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("fma");
}
#endif

/* params, grads, m, v: [n] */
/* This thread's part [*lo, *hi) of n elements in a parallel region (64-aligned). */
static void thread_range(size_t n, size_t *lo, size_t *hi) {
    size_t nt = (size_t)omp_get_num_threads(), t = (size_t)omp_get_thread_num();
    size_t per = (n + nt - 1) / nt;
    per = (per + 63) / 64 * 64;
    *lo = per * t < n ? per * t : n;
    *hi = per * (t + 1) < n ? per * (t + 1) : n;
}

static void adam_step(gt_optim *opt, float *p, const float *grad) {
    opt->t++;
    const double b1 = as_decimal(opt->beta1), b2 = as_decimal(opt->beta2);
    const double bias_c1 = 1.0 - pow(b1, (double)opt->t);
    const double bias_c2 = 1.0 - pow(b2, (double)opt->t);
    adam_coef c;
    c.beta1 = opt->beta1;
    c.beta2 = opt->beta2;
    c.one_minus_b1 = (float)(1.0 - b1);
    c.one_minus_b2 = (float)(1.0 - b2);
    c.bias_c2_sqrt = (float)sqrt(bias_c2);
    c.neg_step = (float)(-(as_decimal(opt->lr) / bias_c1));
    c.eps = opt->eps;
    c.wd = opt->weight_decay;
    /* elementwise: each thread takes a range */
#pragma omp parallel if (opt->n >= 65536)
    {
        size_t lo, hi;
        thread_range(opt->n, &lo, &hi);
#ifdef GT_HAVE_FMA_PATH
        if (have_fma())
            adam_loop_fma(hi - lo, p + lo, grad + lo, opt->m + lo, opt->v + lo, c);
        else
#endif
            adam_loop_generic(hi - lo, p + lo, grad + lo, opt->m + lo, opt->v + lo, c);
    }
}

/* params, grads, m: [n] */
static void sgd_step(gt_optim *opt, float *p, const float *grad) {
    const int first = opt->t == 0;
    opt->t++;
#pragma omp parallel if (opt->n >= 65536)
    {
        size_t lo, hi;
        thread_range(opt->n, &lo, &hi);
#ifdef GT_HAVE_FMA_PATH
        if (have_fma())
            sgd_loop_fma(hi - lo, p + lo, grad + lo, opt->m + lo, opt->beta1, -opt->lr, opt->weight_decay, first);
        else
#endif
            sgd_loop_generic(hi - lo, p + lo, grad + lo, opt->m + lo, opt->beta1, -opt->lr, opt->weight_decay, first);
    }
}

void gt_optim_step(gt_optim *opt, float *params, const float *grads) {
    switch (opt->kind) {
    case GT_OPT_ADAM:
        adam_step(opt, params, grads);
        break;
    case GT_OPT_SGD:
        sgd_step(opt, params, grads);
        break;
    default:
        gt_panic("gt_optim_step: unknown optimizer kind %d", (int)opt->kind);
    }
}

void gt_optim_free(gt_optim *opt) {
    if (!opt) return;
    gt_free(opt->m);
    gt_free(opt->v);
    opt->m = opt->v = NULL;
    opt->bytes = 0;
}
