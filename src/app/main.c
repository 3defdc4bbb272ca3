/* gentrain: the program's entry point and command dispatch; the one place
 * that ends the process on an error (gt_exit_error). */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "gentrain/app.h"
#include "gentrain/io.h"

static const char usage[] =
    "gentrain: data-parallel training of GANs and VAEs (MPI + OpenBLAS + HDF5)\n"
    "\n"
    "usage: gentrain COMMAND [ARGS...]\n"
    "       mpirun -np N gentrain train|eval ...\n"
    "\n"
    "commands:\n"
    "  train CONFIG [section.key=value ...]   train the model a config describes (resumes\n"
    "                                         from the newest checkpoint in run.dir)\n"
    "  sample CHECKPOINT [--n 64] [--out grid.png] [--seed S] [--live]   a PNG grid of samples\n"
    "  eval CHECKPOINT|RUN_DIR ... [--metrics LIST] [--n N] [--json]   evaluation metrics (FID, KID,\n"
    "                                         precision/recall, memorization, IWAE, ...); also under mpirun\n"
    "  inspect FILE.h5                        what a checkpoint/samples/metrics file holds\n"
    "  help keys|layers [--markdown]          every config key; every layer kind\n"
    "\n"
    "Run `gentrain COMMAND --help` for a command's options; `gentrain --version`.\n"
    "Configs are INI files; the reference models ship in configs/ (dcgan, vae, mlpvae,\n"
    "mlpgan, toygan, toyvae, classifier). Exit codes: 0 done, 1 error, 2 usage error,\n"
    "75 stopped on a signal after writing a checkpoint (requeue to resume).\n";

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? GT_ERR_USAGE : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        if (argc > 2) {
            fprintf(stderr, "gentrain: error: --version takes no arguments (got '%s')\n", argv[2]);
            return GT_ERR_USAGE;
        }
        printf("gentrain %s\n", gt_version());
        return 0;
    }
    /* A write over the file-size limit (RLIMIT_FSIZE) then fails with EFBIG
     * and is reported, instead of SIGXFSZ killing us half-way. */
    signal(SIGXFSZ, SIG_IGN);
    const char *cmd = argv[1];
    gt_set_threads(1); /* run.threads may say more */
    gt_status st;
    /* sample, inspect and help are single-process tools: no MPI */
    if (!strcmp(cmd, "sample"))
        st = gt_cmd_sample(argc - 1, argv + 1);
    else if (!strcmp(cmd, "inspect"))
        st = gt_cmd_inspect(argc - 1, argv + 1);
    else if (!strcmp(cmd, "help"))
        st = gt_cmd_help(argc - 1, argv + 1);
    else if (!strcmp(cmd, "train") || !strcmp(cmd, "eval")) {
        gt_keep_freed_memory(); /* before MPI allocates */
        gt_dist_init(&argc, &argv);
        gt_flush_denormals();
        st = !strcmp(cmd, "train") ? gt_cmd_train(argc - 1, argv + 1) : gt_cmd_eval(argc - 1, argv + 1);
        if (st != GT_OK && st != GT_STOPPED) gt_exit_error(st); /* ends every rank */
        gt_dist_finalize();
    } else {
        fprintf(stderr, "%s\n", usage);
        st = GT_USAGE_ERROR("unknown command '%s'%s", cmd,
                            cmd[0] == '-' ? " (options come after the command: gentrain COMMAND --help)" : "");
    }
    gt_h5_library_close();
    if (st == GT_STOPPED) return GT_STOPPED;
    if (st != GT_OK) gt_exit_error(st);
    return 0;
}
