/* Reshape (nn.Unflatten / view): the per-example shape changes, the data does
 * not. The output aliases the input; the delta passes through. */
#include "gentrain/nn.h"

enum { SHAPE, N_OPTS };
static const gt_layer_opt opts[N_OPTS] = {
    [SHAPE] = {"shape", GT_OPT_SHAPE, NULL, 0, 0, 0, 0, "the new per-example shape, CxHxW or N"},
};

static gt_status shape(const gt_layer *L, gt_shape *out) {
    gt_shape r = L->spec.opt[SHAPE].shape;
    if (gt_shape_size(r) != gt_shape_size(L->in))
        return GT_ERROR("cannot reshape %zu features to %dx%dx%d = %zu", gt_shape_size(L->in), r.c, r.h, r.w,
                        gt_shape_size(r));
    *out = r;
    return GT_OK;
}

const gt_layer_kind gt_layer_reshape = {
    .name = "reshape",
    .torch = "nn.Unflatten",
    .help = "a new per-example shape with as many elements",
    .opts = opts,
    .n_opts = N_OPTS,
    .alias = 1,
    .shape = shape,
};
