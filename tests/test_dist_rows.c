/* gt_dist_rows (src/dist/dist.c): how evaluation splits rows over ranks.
 * For every n, chunk and world size: the ranks' ranges are contiguous, in
 * rank order, cover [0, n) exactly once, start on chunk boundaries (so a
 * chunk is the same rows whatever the world size), and hold numbers of
 * chunks that differ by at most one. */
#include "check.h"

#include "gentrain/dist.h"

static void test_rows(void) {
    const int64_t chunks[] = {1, 3, 7, 250};
    int bad = 0, cases = 0;
    for (int64_t n = 0; n <= 1100; n += n < 40 ? 1 : 37)
        for (int c = 0; c < 4; c++)
            for (int world = 1; world <= 5; world++) {
                int64_t chunk = chunks[c], expect = 0, lo = INT64_MAX, hi = 0;
                for (int r = 0; r < world; r++) {
                    int64_t first, last;
                    gt_dist_rows(n, chunk, r, world, &first, &last);
                    int64_t k = (last - first + chunk - 1) / chunk;
                    if (first != expect || last < first || last > n || (first < n && first % chunk != 0)) bad++;
                    lo = k < lo ? k : lo;
                    hi = k > hi ? k : hi;
                    expect = last;
                }
                if (expect != n || hi - lo > 1) bad++;
                cases++;
            }
    CHECK(bad == 0, "%d of %d (n, chunk, world) cases split wrongly", bad, cases);
    int64_t first, last;
    gt_dist_rows(1000, 250, 1, 3, &first, &last); /* 4 chunks over 3 ranks: 2, 1, 1 */
    CHECK(first == 500 && last == 750, "rank 1 of 3, 1000 rows in chunks of 250: [%lld, %lld)", (long long)first,
          (long long)last);
}

int main(void) {
    test_rows();
    return check_report("test_dist_rows");
}
