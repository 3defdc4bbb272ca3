/* gentrain: the program's entry point and subcommand dispatch. */
#include <stdio.h>
#include <string.h>

#include "gentrain/app.h"
#include "gentrain/core.h"
#include "gentrain/dist.h"

static const char usage[] =
    "gentrain: data-parallel training of GANs and VAEs (MPI + OpenBLAS + HDF5)\n"
    "\n"
    "usage: gentrain COMMAND [ARGS...]\n"
    "       mpirun -np N gentrain train CONFIG [section.key=value ...]\n"
    "\n"
    "commands:\n"
    "  train CONFIG [section.key=value ...]   train the model a config describes (resumes\n"
    "                                         from the newest checkpoint in run.dir)\n"
    "  sample CHECKPOINT [--n 64] [--out grid.png] [--seed S]   a PNG grid of samples\n"
    "  inspect FILE.h5                        what a checkpoint/samples/metrics file holds\n"
    "\n"
    "Run `gentrain COMMAND --help` for a command's options. Configs are INI files;\n"
    "the reference models ship in configs/ (dcgan, vae, mlpvae, mlpgan, toygan,\n"
    "toyvae, classifier). Exit codes: 0 done, 1 error, 2 usage error,\n"
    "75 stopped on SIGTERM/SIGUSR1 after writing a checkpoint (requeue to resume).\n";

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    /* sample and inspect are single-process tools: no MPI */
    if (!strcmp(cmd, "sample")) return gt_cmd_sample(argc - 1, argv + 1);
    if (!strcmp(cmd, "inspect")) return gt_cmd_inspect(argc - 1, argv + 1);
    if (strcmp(cmd, "train") != 0) {
        fprintf(stderr, "gentrain: error: unknown command '%s'\n\n%s", cmd, usage);
        return 2;
    }
    gt_dist_init(&argc, &argv);
    gt_flush_denormals();
    int rc = gt_cmd_train(argc - 1, argv + 1);
    gt_dist_finalize();
    return rc;
}
