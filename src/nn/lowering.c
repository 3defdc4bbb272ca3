/* The batched lowering that conv2d and convt2d share: im2col/col2im over a
 * chunk of the batch, NCHW <-> [C, B*L] transposes, bias gradients. */
#include "gentrain/core.h"
#include "gentrain/layers.h"

#include <immintrin.h> /* SSE: part of x86-64-v2, the build's baseline */
#include <string.h>

/* The output positions o in [*lo, *hi) whose input position o*S - P + k lies in [0, n). */
void gt_nn_valid_range(int k, int S, int P, int n, int on, int *lo, int *hi) {
    int a = P - k; /* need o*S >= a */
    int l = a <= 0 ? 0 : (a + S - 1) / S;
    int b = n - 1 + P - k; /* need o*S <= b */
    int h = b < 0 ? 0 : b / S + 1;
    if (l > on) l = on;
    if (h > on) h = on;
    if (h < l) h = l;
    *lo = l;
    *hi = h;
}

/* im2col's row of tap kj: dst[ow] = src[ow*S + off], zero outside [lo, hi) */
static inline void im2col_row(float *dst, const float *src, int S, int off, int lo, int hi, int OW) {
    for (int ow = 0; ow < lo; ow++) dst[ow] = 0.0f;
    if (S == 1) memcpy(dst + lo, src + lo + off, sizeof(float) * (size_t)(hi - lo));
    else
        for (int ow = lo; ow < hi; ow++) dst[ow] = src[ow * S + off];
    for (int ow = hi; ow < OW; ow++) dst[ow] = 0.0f;
}

/* The rows of two neighbouring taps at stride 2 from one pass over src:
 * d0[ow] = src[2*ow + off], d1[ow] = src[2*ow + off + 1] (each zero outside
 * its tap's [lo, hi)); where both are valid, four ow at a time split from
 * eight consecutive floats. */
static inline void im2col_row_pair(float *d0, float *d1, const float *src, int off, const int *lo, const int *hi,
                                   int OW) {
    int a = lo[0] > lo[1] ? lo[0] : lo[1], b = hi[0] < hi[1] ? hi[0] : hi[1];
    if (b < a) b = a;
    for (int ow = 0; ow < OW; ow++) {
        if (ow == a) ow = b; /* [a, b) below */
        if (ow >= OW) break;
        d0[ow] = ow >= lo[0] && ow < hi[0] ? src[2 * ow + off] : 0.0f;
        d1[ow] = ow >= lo[1] && ow < hi[1] ? src[2 * ow + off + 1] : 0.0f;
    }
    int ow = a;
    for (; ow + 4 <= b; ow += 4) {
        __m128 v = _mm_loadu_ps(src + 2 * ow + off), w = _mm_loadu_ps(src + 2 * ow + off + 4);
        _mm_storeu_ps(d0 + ow, _mm_shuffle_ps(v, w, _MM_SHUFFLE(2, 0, 2, 0)));
        _mm_storeu_ps(d1 + ow, _mm_shuffle_ps(v, w, _MM_SHUFFLE(3, 1, 3, 1)));
    }
    for (; ow < b; ow++) {
        d0[ow] = src[2 * ow + off];
        d1[ow] = src[2 * ow + off + 1];
    }
}

/* x [B,C,H,W] -> col [C*K*K, B*OH*OW]. At stride 2 the taps go in pairs
 * (kj, kj+1), whose rows read the same input elements: a copy, so any
 * grouping gives the same columns. */
void gt_nn_im2col_batch(const float *x, int B, int C, int H, int W, int K, int S, int P, int OH, int OW, float *col) {
    size_t L = (size_t)OH * OW, ld = (size_t)B * L;
    int group = S == 2 ? 2 : 1, KG = (K + group - 1) / group;
#pragma omp parallel for collapse(3) schedule(static) if ((size_t)C * K * K * ld >= GT_PAR_MIN)
    for (int c = 0; c < C; c++)
        for (int ki = 0; ki < K; ki++)
            for (int kg = 0; kg < KG; kg++) {
                int kj = kg * group, pair = group == 2 && kj + 1 < K;
                int lo[2] = {0, 0}, hi[2] = {0, 0};
                gt_nn_valid_range(kj, S, P, W, OW, &lo[0], &hi[0]);
                if (pair) gt_nn_valid_range(kj + 1, S, P, W, OW, &lo[1], &hi[1]);
                int off = kj - P;
                for (int b = 0; b < B; b++) {
                    const float *img = x + ((size_t)b * C + c) * H * W;
                    float *d0 = col + (size_t)((c * K + ki) * K + kj) * ld + (size_t)b * L, *d1 = d0 + ld;
                    for (int oh = 0; oh < OH; oh++, d0 += OW, d1 += OW) {
                        int ih = oh * S - P + ki;
                        if (ih < 0 || ih >= H) {
                            memset(d0, 0, sizeof(float) * (size_t)OW);
                            if (pair) memset(d1, 0, sizeof(float) * (size_t)OW);
                        } else if (pair)
                            im2col_row_pair(d0, d1, img + (size_t)ih * W, off, lo, hi, OW);
                        else
                            im2col_row(d0, img + (size_t)ih * W, S, off, lo[0], hi[0], OW);
                    }
                }
            }
}

/* The geometry of a stride-2 col2im row with an even K: tap kj = 2t + r
 * (t < K/2, r = 0, 1) at column ow adds to element 2m + r - P of the output
 * row, m = ow + t, for ow in [lo, hi) of the tap. Every tap is valid for m in
 * [m0, m1); the other elements' few taps are listed, in the order of kj. */
typedef struct {
    int m0, m1;
    int n_edge;
    struct {
        int at, kj, ow; /* dst[at] += src[kj][ow] */
    } edge[256];        /* K <= 16: at most K/2 m on each side, K taps each */
} s2_ranges;

static void s2_ranges_init(s2_ranges *g, int K, int P, int W, int OW) {
    int lo[16], hi[16], ma = 1 << 30, mb = 0;
    g->m0 = 0, g->m1 = 1 << 30, g->n_edge = 0;
    for (int kj = 0; kj < K; kj++) {
        int t = kj / 2;
        gt_nn_valid_range(kj, 2, P, W, OW, &lo[kj], &hi[kj]);
        if (lo[kj] + t > g->m0) g->m0 = lo[kj] + t;
        if (hi[kj] + t < g->m1) g->m1 = hi[kj] + t;
        if (hi[kj] > lo[kj]) {
            if (lo[kj] + t < ma) ma = lo[kj] + t;
            if (hi[kj] + t > mb) mb = hi[kj] + t;
        }
    }
    if (g->m1 < g->m0) g->m1 = g->m0;
    for (int m = ma; m < mb; m++) {
        if (m >= g->m0 && m < g->m1) continue;
        for (int r = 0; r < 2; r++)
            for (int kj = r; kj < K; kj += 2) {
                int ow = m - kj / 2;
                if (ow < lo[kj] || ow >= hi[kj]) continue;
                GT_ASSERT(g->n_edge < 256, "col2im: more than 256 edge taps in a row (K %d, P %d)", K, P);
                g->edge[g->n_edge].at = 2 * m + r - P;
                g->edge[g->n_edge].kj = kj;
                g->edge[g->n_edge].ow = ow;
                g->n_edge++;
            }
    }
}

/* Adds one row's K taps (src[kj]: tap kj's columns of the row) into the
 * output row dst. Each element gets its taps in the order of kj, as one pass
 * per tap would add them, so the sums are the same bits; in [m0, m1) four m
 * (eight elements) at a time are summed in registers, with one load and one
 * store of dst. */
static void col2im_row_s2(float *dst, const float *const *src, const s2_ranges *g, int K, int P) {
    int T = K / 2, m = g->m0, m1 = g->m1;
    for (; m + 4 <= m1; m += 4) {
        float *d = dst + 2 * m - P;
        __m128 a = _mm_loadu_ps(d), b = _mm_loadu_ps(d + 4);
        for (int t = 0; t < T; t++) {
            __m128 e = _mm_loadu_ps(src[2 * t] + m - t), o = _mm_loadu_ps(src[2 * t + 1] + m - t);
            a = _mm_add_ps(a, _mm_unpacklo_ps(e, o));
            b = _mm_add_ps(b, _mm_unpackhi_ps(e, o));
        }
        _mm_storeu_ps(d, a);
        _mm_storeu_ps(d + 4, b);
    }
    for (; m + 2 <= m1; m += 2) {
        float *d = dst + 2 * m - P;
        __m128 a = _mm_loadu_ps(d);
        for (int t = 0; t < T; t++) {
            /* two floats each (an unaligned 8-byte load) */
            __m128 e = _mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)(src[2 * t] + m - t)));
            __m128 o = _mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)(src[2 * t + 1] + m - t)));
            a = _mm_add_ps(a, _mm_unpacklo_ps(e, o));
        }
        _mm_storeu_ps(d, a);
    }
    for (; m < m1; m++)
        for (int r = 0; r < 2; r++)
            for (int t = 0; t < T; t++) dst[2 * m + r - P] += src[2 * t + r][m - t];
    for (int i = 0; i < g->n_edge; i++) dst[g->edge[i].at] += src[g->edge[i].kj][g->edge[i].ow];
}

/* col [C*K*K, B*OH*OW] -> x [B,C,H,W] (overwritten). One thread per plane
 * x[b,c] (planes, not channels: a one-channel output is parallel too), zeroed
 * and then summed in the order (ki, kj). */
void gt_nn_col2im_batch(const float *col, int B, int C, int H, int W, int K, int S, int P, int OH, int OW, float *x) {
    size_t L = (size_t)OH * OW, ld = (size_t)B * L;
    int by_rows = S == 2 && K % 2 == 0 && K <= 16; /* col2im_row_s2 */
    s2_ranges g;
    if (by_rows) s2_ranges_init(&g, K, P, W, OW);
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)C * K * K * ld >= GT_PAR_MIN)
    for (int c = 0; c < C; c++)
        for (int b = 0; b < B; b++) {
            float *img = x + ((size_t)b * C + c) * H * W;
            memset(img, 0, sizeof(float) * (size_t)H * W);
            for (int ki = 0; ki < K; ki++) {
                const float *src0 = col + (size_t)(c * K + ki) * K * ld + (size_t)b * L;
                if (by_rows) {
                    const float *s[16];
                    for (int oh = 0; oh < OH; oh++) {
                        int ih = oh * S - P + ki;
                        if (ih < 0 || ih >= H) continue;
                        for (int kj = 0; kj < K; kj++) s[kj] = src0 + (size_t)kj * ld + (size_t)oh * OW;
                        col2im_row_s2(img + (size_t)ih * W, s, &g, K, P);
                    }
                    continue;
                }
                for (int kj = 0; kj < K; kj++) {
                    const float *srck = src0 + (size_t)kj * ld;
                    int lo, hi;
                    gt_nn_valid_range(kj, S, P, W, OW, &lo, &hi);
                    int off = kj - P;
                    for (int oh = 0; oh < OH; oh++) {
                        int ih = oh * S - P + ki;
                        if (ih < 0 || ih >= H) continue;
                        const float *src = srck + (size_t)oh * OW;
                        float *dst = img + (size_t)ih * W;
                        if (S == 1)
                            for (int ow = lo; ow < hi; ow++) dst[ow + off] += src[ow];
                        else
                            for (int ow = lo; ow < hi; ow++) dst[ow * S + off] += src[ow];
                    }
                }
            }
        }
}

/* Examples per chunk of a batched lowering whose column buffer holds
 * col_per_example floats per example: chunks keep the columns in cache
 * between the GEMM that writes them and the pass that reads them. */
int gt_nn_batch_chunk(int B, size_t col_per_example) {
    size_t n = GT_NN_CHUNK_FLOATS / (col_per_example ? col_per_example : 1);
    return n < 1 ? 1 : n > (size_t)B ? B : (int)n;
}

/* x [B,C,L] -> t [C, B*L] */
void gt_nn_nchw_to_cbl(float *t, const float *x, int B, int C, size_t L) {
#pragma omp parallel for schedule(static) if ((size_t)B * C * L >= GT_PAR_MIN)
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            memcpy(t + ((size_t)c * B + b) * L, x + ((size_t)b * C + c) * L, sizeof(float) * L);
}

/* t [C, B*L] (+ bias [C]) -> y [B,C,L] */
void gt_nn_cbl_to_nchw(float *y, const float *t, const float *bias, int B, int C, size_t L) {
#pragma omp parallel for schedule(static) if ((size_t)B * C * L >= GT_PAR_MIN)
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            float *dst = y + ((size_t)b * C + c) * L;
            const float *src = t + ((size_t)c * B + b) * L;
            if (bias) {
                float bc = bias[c];
                for (size_t l = 0; l < L; l++) dst[l] = src[l] + bc;
            } else {
                memcpy(dst, src, sizeof(float) * L);
            }
        }
}

/* db [C] += sum over b, l of dy [B,C,L] */
void gt_nn_bias_grad_nchw(float *db, const float *dy, int B, int C, size_t L) {
#pragma omp parallel for schedule(static) if ((size_t)B * C * L >= GT_PAR_MIN)
    for (int c = 0; c < C; c++) {
        double s = 0.0;
        for (int b = 0; b < B; b++) {
            const float *p = dy + ((size_t)b * C + c) * L;
            float a[8] = {0}; /* independent partial sums, so that the loop vectorizes */
            size_t l = 0;
            for (; l + 8 <= L; l += 8)
                for (int j = 0; j < 8; j++) a[j] += p[l + j];
            float sb = 0.0f;
            for (int j = 0; j < 8; j++) sb += a[j];
            for (; l < L; l++) sb += p[l];
            s += sb;
        }
        db[c] += (float)s;
    }
}

