/* The version and the git revision the build came from (set by CMake). */
#include "gentrain/core.h"

#ifndef GENTRAIN_VERSION
#define GENTRAIN_VERSION "0.0.0"
#endif
#ifndef GENTRAIN_GIT_REVISION
#define GENTRAIN_GIT_REVISION "unknown"
#endif

const char *gt_version(void) { return GENTRAIN_VERSION " (git " GENTRAIN_GIT_REVISION ")"; }
