/* Flatten (nn.Flatten): CxHxW -> C*H*W features. The output aliases the
 * input; the delta passes through. */
#include "gentrain/nn.h"

#include <limits.h>

static gt_status shape(const gt_layer *L, gt_shape *out) {
    size_t n = gt_shape_size(L->in);
    if (n > INT_MAX) return GT_ERROR("%zu features are too many for one vector", n);
    *out = (gt_shape){(int)n, 1, 1};
    return GT_OK;
}

const gt_layer_kind gt_layer_flatten = {
    .name = "flatten",
    .torch = "nn.Flatten",
    .help = "CxHxW to a vector of C*H*W features",
    .alias = 1,
    .shape = shape,
};
