/* app: the subcommands of the gentrain program. */
#ifndef GENTRAIN_APP_H
#define GENTRAIN_APP_H

int gt_cmd_train(int argc, char **argv);

#endif
