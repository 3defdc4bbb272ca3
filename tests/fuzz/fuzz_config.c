/* libFuzzer target: the INI reader and the options on arbitrary text
 * (tests/fuzz.sh, tools/fuzz). The input is a config file, optionally
 * followed by a 0x02 byte and one command-line setting (section.key=value):
 * gt_config_parse, gt_config_override, gt_options_from_config. Errors are
 * values: every call either succeeds or records a message, which is cleared.
 * A crash, a sanitizer report, a leak, a hang, a panic (GT_ASSERT: exit), or
 * a resolved configuration that does not resolve to itself is a finding. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gentrain/app.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char *setting = memchr(text, '\x02', size);
    if (setting) *setting++ = '\0';
    gt_config *cfg = NULL;
    if (gt_config_parse(text, "fuzz.ini", &cfg) == GT_OK && (!setting || gt_config_override(cfg, setting) == GT_OK)) {
        gt_options o;
        if (gt_options_from_config(cfg, "fuzz.ini", &o) == GT_OK) {
            /* the resolved text (what config.ini and checkpoints hold) must
             * resolve to itself */
            gt_config *again = NULL;
            gt_options o2;
            if (gt_config_parse(o.text, "resolved", &again) != GT_OK ||
                gt_options_from_config(again, "fuzz.ini", &o2) != GT_OK) {
                fprintf(stderr, "resolved config does not parse: %s\n%s\n", gt_error_message(), o.text);
                abort();
            }
            if (strcmp(o.text, o2.text) != 0) {
                fprintf(stderr, "resolved config is not a fixed point:\n%s\n----\n%s\n", o.text, o2.text);
                abort();
            }
            gt_options_free(&o2);
            gt_config_free(again);
            gt_options_free(&o);
        }
    }
    gt_config_free(cfg);
    gt_error_clear();
    free(text);
    return 0;
}
