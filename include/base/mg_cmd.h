/* The command line: how a command is called, how it parses its options, and the entry
 * point of every command.
 *
 * A command is a function int f(int argc, char **argv) whose argv[0] is the command's own
 * name ("train"; "fmnist" under "data") and argv[1..] its arguments; it returns the
 * process exit status (0 done, 2 a usage error, others as the command documents). main.c
 * dispatches through one table of them (mg_cmd_dispatch); a command that holds further
 * commands (`mpigan data fmnist`, `mpigan classifier train`) dispatches through a small
 * table of its own the same way. Each command lives beside the subsystem it drives, in
 * src/<subsystem>/<name>_cmd.c, and that subsystem's header declares it.
 *
 * Options are parsed by getopt_long through mg_cmd_next: `--opt=value` and `--opt value`
 * (and `-o value`, `-ovalue`) mean the same, `--` ends the options, and positional
 * arguments may stand anywhere among the options. Every rank parses the same arguments
 * and so reaches the same verdict: a usage error returns 2 on every rank before any
 * collective call, and only rank 0 prints (the message names the option and points to
 * the command's --help). Errors found later (files, configs) go through the error
 * path (mg_error.h), which ends every rank. */
#ifndef MG_CMD_H
#define MG_CMD_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

typedef int (*mg_cmd_fn)(int argc, char **argv);

/* One row of a command table. */
typedef struct {
    const char *name;   /* what the user types */
    mg_cmd_fn run;
    const char *args;   /* its arguments in the listing ("CONFIG.yaml"), or "" */
    const char *help;   /* one line: what it does */
} mg_cmd;

typedef struct {
    const char *prog;   /* the prefix users type: "mpigan", "mpigan data" */
    const char *about;  /* lines printed under the usage line, or NULL */
    const char *footer; /* lines printed after the listing, or NULL */
    const mg_cmd *cmds;
    int n_cmds;
} mg_cmd_table;

/* argv[0] names the table's owner, argv[1] the command, which then runs with
 * (argc - 1, argv + 1) and whose status is returned. "--help", "-h" or "help": the
 * listing on stdout, 0; "help NAME": NAME's own --help. No command: the listing on
 * stderr, 2. An unknown name: a message naming it and the listing on stderr, 2. */
int mg_cmd_dispatch(const mg_cmd_table *t, int argc, char **argv);

/* Writes the table's usage and listing (every rank that calls it). */
void mg_cmd_list(const mg_cmd_table *t, FILE *f);

/* ---- option parsing ---- */

#define MG_CMD_MAX_OPTIONS 32   /* long options per command */
#define MG_CMD_MAX_ARGS 16      /* positional arguments per command */

/* The parse of one command's arguments. Use:
 *
 *     static const struct option options[] = {{"set", required_argument, NULL, 's'}, ..., {0}};
 *     mg_cmd_parser p;
 *     mg_cmd_parse_begin(&p, "mpigan train", train_usage, "", options, argc, argv);
 *     for (int c; (c = mg_cmd_next(&p));)
 *         switch (c) { case 's': ... p.value ...; break; }
 *     if (!mg_cmd_parse_end(&p, 1, 1, "CONFIG.yaml"))
 *         return p.status;
 *     ... p.args[0] ...
 *
 * Every command takes --help and -h without listing them: they print the usage on
 * stdout and end the parse with status 0. */
typedef struct {
    int argc;
    char **argv;
    const char *prog;  /* "mpigan train": starts every message */
    const char *usage; /* the command's help text, printed for --help */
    char shortopts[64];
    struct option longopts[MG_CMD_MAX_OPTIONS + 2];
    /* the option mg_cmd_next returned */
    const char *value;  /* its value, NULL for a flag */
    char option[64];    /* its name as the user spelled it out: "--set", "-n" */
    /* positional arguments, in order */
    const char *args[MG_CMD_MAX_ARGS];
    int n_args;
    /* set when the command must return p.status now: help printed (0) or a usage error (2) */
    bool stop;
    int status;
} mg_cmd_parser;

/* Starts a parse of argv (argv[0] the command). shortopts as for getopt ("n:o:" - a colon
 * after an option that takes a value); longopts ends with a zeroed entry and gives every
 * option a non-zero val (its short letter, or any other code). Resets getopt's state, so
 * parses may follow each other and nest. */
void mg_cmd_parse_begin(mg_cmd_parser *p, const char *prog, const char *usage, const char *shortopts,
                        const struct option *longopts, int argc, char **argv);

/* The next option's val (p->value and p->option describe it), or 0 when the arguments
 * are used up or the parse stopped (unknown option, missing value, --help, or a failed
 * mg_cmd_* value check). Positional arguments are collected into p->args. */
int mg_cmd_next(mg_cmd_parser *p);

/* After the loop: true when the command should go on, i.e. the parse did not stop and
 * it found min..max positional arguments (what names them in the message: "CONFIG.yaml").
 * Otherwise the message is printed and p->status is the exit status. */
bool mg_cmd_parse_end(mg_cmd_parser *p, int min, int max, const char *what);

/* The whole parse of a command with no options of its own (only --help): begin, the loop
 * and end, for min..max positional arguments. Returns as mg_cmd_parse_end. */
bool mg_cmd_parse_plain(mg_cmd_parser *p, const char *prog, const char *usage, int argc, char **argv, int min,
                        int max, const char *what);

/* The current option's value as an integer in [lo, hi] / a number > 0. On failure:
 * a message naming the option and value, the parse stops with status 2, and *out is
 * unchanged. */
bool mg_cmd_int(mg_cmd_parser *p, long long lo, long long hi, long long *out);
bool mg_cmd_positive(mg_cmd_parser *p, double *out);

/* Prints "<prog>: <message>" and where the usage is on stderr (rank 0), stops the
 * parse with status 2 and returns 2. mg_cmd_next reports bad options this way; commands
 * call it for errors found after parsing (options that go together, a bad kind). */
int mg_cmd_usage_error(mg_cmd_parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
