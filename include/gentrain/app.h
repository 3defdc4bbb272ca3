/* app: the subcommands of the gentrain program. */
#ifndef GENTRAIN_APP_H
#define GENTRAIN_APP_H

int gt_cmd_train(int argc, char **argv);
int gt_cmd_sample(int argc, char **argv);  /* src/app/sample.c */
int gt_cmd_inspect(int argc, char **argv); /* src/app/inspect.c */

#endif
