/* Small values as text: strict integers, finite numbers, booleans, shapes.
 * Shared by the config reader, the layer-line parser and the command line. */
#include "gentrain/core.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <strings.h>

int gt_parse_long(const char *s, long *out) {
    if (!s || !*s || isspace((unsigned char)*s)) return 0;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end) return 0;
    *out = v;
    return 1;
}

int gt_parse_double(const char *s, double *out) {
    if (!s || !*s || isspace((unsigned char)*s)) return 0;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || errno == ERANGE || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

int gt_parse_bool(const char *s) {
    static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no", "off", "0"};
    if (!s) return -1;
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) return 1;
        if (strcasecmp(s, no[i]) == 0) return 0;
    }
    return -1;
}

int gt_parse_shape(const char *s, gt_shape *out) {
    long d[3];
    int n = 0;
    const char *p = s;
    for (;;) {
        if (n == 3 || !isdigit((unsigned char)*p)) return 0;
        char *end;
        errno = 0;
        d[n] = strtol(p, &end, 10);
        if (errno || d[n] < 1 || d[n] > (1l << 30)) return 0;
        n++;
        p = end;
        if (*p == '\0') break;
        if (*p != 'x') return 0;
        p++;
    }
    if (n == 2) return 0;
    if (n == 1) d[1] = d[2] = 1;
    out->c = (int)d[0];
    out->h = (int)d[1];
    out->w = (int)d[2];
    return 1;
}
