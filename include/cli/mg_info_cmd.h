/* `mpigan info`: the build's version, OpenBLAS kernel and threads, MPI ranks
 * (src/cli/info_cmd.c). A command as mg_cmd.h defines it. */
#ifndef MG_INFO_CMD_H
#define MG_INFO_CMD_H

int mg_cmd_info(int argc, char **argv);

#endif
