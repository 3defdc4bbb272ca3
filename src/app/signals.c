/* Stop signals of `gentrain train` (include/gentrain/app.h): the handler only
 * records the signal; the training loop looks at the step boundary, where
 * all ranks agree to stop and a checkpoint is written. */
#include "gentrain/app.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) { stop_signal = sig; } /* no I/O here */

static const int stop_signals[] = {SIGTERM, SIGUSR1, SIGINT, SIGHUP};

gt_status gt_signals_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (size_t i = 0; i < sizeof stop_signals / sizeof stop_signals[0]; i++)
        if (sigaction(stop_signals[i], &sa, NULL) != 0)
            return GT_ERROR("cannot install the %s handler: %s", gt_signal_name(stop_signals[i]), strerror(errno));
    /* A write over RLIMIT_FSIZE then fails with EFBIG (and is reported) instead of killing us. */
    if (signal(SIGXFSZ, SIG_IGN) == SIG_ERR) return GT_ERROR("cannot ignore SIGXFSZ: %s", strerror(errno));
    return GT_OK;
}

int gt_signal_received(void) { return (int)stop_signal; }

const char *gt_signal_name(int sig) {
    switch (sig) {
    case SIGTERM: return "SIGTERM";
    case SIGUSR1: return "SIGUSR1";
    case SIGINT: return "SIGINT";
    case SIGHUP: return "SIGHUP";
    default: return "a signal on another rank";
    }
}
