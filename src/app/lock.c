/* The run directory's lock (include/gentrain/app.h): one training run per
 * run.dir at a time.
 *
 * Rank 0 takes an exclusive POSIX record lock (fcntl F_SETLK, F_WRLCK, the
 * whole file) on run.dir/gentrain.lock before it touches anything else in the
 * directory, and holds it until the process ends: the kernel releases it when
 * the process exits or is killed (SIGKILL included), so a lock can never be
 * left behind by a dead run. The file itself stays; it records who holds it
 * ("pid P on host H since T"), which a second run reads to say who is in its
 * way.
 *
 * fcntl rather than flock(2): Linux's NFS client implements both through
 * NFS's byte-range locks (NLM for v3, the protocol's own for v4), which the
 * server enforces across hosts; Lustre enforces fcntl and flock locks across
 * clients only when mounted with -o flock (with -o localflock only on one node,
 * without either option both fail with ENOSYS); GPFS enforces fcntl locks.
 * A file system without locks (the call fails with ENOLCK, ENOSYS or
 * EOPNOTSUPP) gives a warning, and the run goes on unprotected.
 *
 * POSIX record locks belong to the process and are released when *any*
 * descriptor of the file is closed, so the file is opened once and only
 * here. */
#include "gentrain/app.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOCK_NAME "gentrain.lock"

static int lock_fd = -1;

/* What the lock file says about its holder, one line ("" if unreadable). */
static void read_holder(int fd, char *buf, size_t cap) {
    ssize_t n = pread(fd, buf, cap - 1, 0);
    if (n < 0) n = 0;
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
}

gt_status gt_run_lock(const char *dir) {
    if (lock_fd >= 0) return GT_OK;
    char path[4300];
    int n = snprintf(path, sizeof path, "%s/%s", dir, LOCK_NAME);
    GT_ENSURE(n > 0 && (size_t)n < sizeof path, "run directory path too long: %s", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0664);
    if (fd < 0) return GT_ERROR("run directory is not writable: cannot create its lock file %s: %s", path, strerror(errno));
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, F_SETLK, &fl) != 0) {
        int e = errno;
        if (e == EACCES || e == EAGAIN) {
            char holder[512];
            read_holder(fd, holder, sizeof holder);
            struct flock q;
            memset(&q, 0, sizeof q);
            q.l_type = F_WRLCK;
            q.l_whence = SEEK_SET;
            long pid = fcntl(fd, F_GETLK, &q) == 0 && q.l_type != F_UNLCK ? (long)q.l_pid : 0;
            close(fd);
            char who[700];
            if (holder[0])
                snprintf(who, sizeof who, "%s", holder);
            else if (pid > 0)
                snprintf(who, sizeof who, "pid %ld", pid);
            else
                snprintf(who, sizeof who, "a process that has not said who it is yet");
            return GT_ERROR("run directory %s is in use by another gentrain run: %s (it holds the lock on %s). Two "
                            "runs on one run.dir would mix their checkpoints and metrics: wait for that run to end or "
                            "stop it, or choose another run.dir",
                            dir, who, path);
        }
        close(fd);
        if (e == ENOLCK || e == ENOSYS || e == EOPNOTSUPP || e == EINVAL) {
            gt_warn("run directory %s: its file system does not support locks (fcntl on %s: %s); nothing stops a "
                    "second run on this run.dir from mixing its files with this one's (on Lustre, mount with -o "
                    "flock)",
                    dir, path, strerror(e));
            return GT_OK;
        }
        return GT_ERROR("cannot lock the run directory's lock file %s: %s", path, strerror(e));
    }
    /* who holds it, for the next run that finds it locked */
    char host[256] = "?", when[64] = "?", line[512];
    if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "?");
    host[sizeof host - 1] = '\0';
    time_t now = time(NULL);
    struct tm tm;
    if (localtime_r(&now, &tm)) strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    int len = snprintf(line, sizeof line, "pid %ld on host %s since %s\n", (long)getpid(), host, when);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)len, 0) != len)
        gt_warn("cannot write who holds the lock into %s: %s (the lock holds all the same)", path, strerror(errno));
    lock_fd = fd; /* held until the process ends */
    return GT_OK;
}
