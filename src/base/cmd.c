/* Command tables and option parsing for every command (see mg_cmd.h). The parsing is
 * libc's getopt_long; this file adds what every command needs around it: --help, the
 * positional arguments in order, and error messages that name the option, printed by
 * rank 0 alone while every rank returns the same status. */
#include "mg_cmd.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "mg_dist.h"
#include "mg_error.h"

static bool is_root(void) { return mg_dist_rank() == 0; }

/* ---- tables ---- */

/* Longer names (with their arguments) than this get their help on the next line. */
enum { LIST_WIDTH = 22 };

static void list_row(FILE *f, const char *name, const char *args, const char *help)
{
    char left[160];
    snprintf(left, sizeof left, "%s%s%s", name, args && args[0] ? " " : "", args ? args : "");
    if (strlen(left) <= LIST_WIDTH)
        fprintf(f, "  %-*s  %s\n", LIST_WIDTH, left, help);
    else
        fprintf(f, "  %s\n  %-*s  %s\n", left, LIST_WIDTH, "", help);
}

void mg_cmd_list(const mg_cmd_table *t, FILE *f)
{
    fprintf(f, "usage: %s <command> [options]\n", t->prog);
    if (t->about)
        fputs(t->about, f);
    fputs("\ncommands:\n", f);
    for (int i = 0; i < t->n_cmds; i++)
        list_row(f, t->cmds[i].name, t->cmds[i].args, t->cmds[i].help);
    list_row(f, "help", "[COMMAND]", "this text, or a command's own");
    fprintf(f, "\n%s <command> --help shows a command's options.\n", t->prog);
    if (t->footer)
        fputs(t->footer, f);
}

static const mg_cmd *find(const mg_cmd_table *t, const char *name)
{
    for (int i = 0; i < t->n_cmds; i++)
        if (!strcmp(t->cmds[i].name, name))
            return &t->cmds[i];
    return NULL;
}

static int unknown_command(const mg_cmd_table *t, const char *name)
{
    if (is_root()) {
        fprintf(stderr, "%s: unknown command '%s'\n\n", t->prog, name);
        mg_cmd_list(t, stderr);
    }
    return 2;
}

int mg_cmd_dispatch(const mg_cmd_table *t, int argc, char **argv)
{
    if (argc < 2) {
        if (is_root()) {
            fprintf(stderr, "%s: give a command\n\n", t->prog);
            mg_cmd_list(t, stderr);
        }
        return 2;
    }
    const char *name = argv[1];
    if (!strcmp(name, "help") && argc > 2) {
        const mg_cmd *c = find(t, argv[2]);
        if (!c)
            return unknown_command(t, argv[2]);
        char *help_argv[] = {argv[2], "--help", NULL};
        return c->run(2, help_argv);
    }
    if (!strcmp(name, "help") || !strcmp(name, "--help") || !strcmp(name, "-h")) {
        if (is_root())
            mg_cmd_list(t, stdout);
        return 0;
    }
    const mg_cmd *c = find(t, name);
    return c ? c->run(argc - 1, argv + 1) : unknown_command(t, name);
}

/* ---- options ---- */

int mg_cmd_usage_error(mg_cmd_parser *p, const char *fmt, ...)
{
    if (is_root()) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "%s: ", p->prog);
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "\nRun '%s --help' for its usage and options.\n", p->prog);
        va_end(ap);
    }
    p->stop = true;
    p->status = 2;
    return 2;
}

void mg_cmd_parse_begin(mg_cmd_parser *p, const char *prog, const char *usage, const char *shortopts,
                        const struct option *longopts, int argc, char **argv)
{
    memset(p, 0, sizeof *p);
    p->argc = argc;
    p->argv = argv;
    p->prog = prog;
    p->usage = usage;
    /* '-': arguments that are not options come back in order as code 1, so positional
     * arguments keep their order and argv is never permuted (whatever POSIXLY_CORRECT
     * says); ':': a missing value is reported as ':' rather than '?' */
    MG_CHECK(strlen(shortopts) + 4 < sizeof p->shortopts, prog, NULL, "too many short options");
    snprintf(p->shortopts, sizeof p->shortopts, "-:h%s", shortopts);
    int n = 0;
    for (; longopts && longopts[n].name; n++) {
        MG_CHECK(n < MG_CMD_MAX_OPTIONS, prog, "raise MG_CMD_MAX_OPTIONS", "too many long options");
        MG_CHECK(longopts[n].flag == NULL && longopts[n].val != 0 && longopts[n].val != 'h', longopts[n].name,
                 NULL, "a long option needs its own non-zero val (and no flag)");
        p->longopts[n] = longopts[n];
    }
    p->longopts[n] = (struct option){"help", no_argument, NULL, 'h'};
    /* getopt keeps its position in globals: 0 restarts it from argv[1] */
    optind = 0;
    opterr = 0;
}

static void add_arg(mg_cmd_parser *p, const char *arg)
{
    if (p->n_args == MG_CMD_MAX_ARGS)
        mg_cmd_usage_error(p, "too many arguments (at '%s')", arg);
    else
        p->args[p->n_args++] = arg;
}

/* The message for what getopt_long rejected; arg is the argument it was looking at. */
static void bad_option(mg_cmd_parser *p, int c, const char *arg)
{
    char name[64];
    const bool is_long = !strncmp(arg, "--", 2);
    if (is_long)
        snprintf(name, sizeof name, "%.*s", (int)strcspn(arg, "="), arg);
    else
        snprintf(name, sizeof name, "-%c", optopt);
    if (c == ':') {
        mg_cmd_usage_error(p, "option '%s' needs a value", name);
        return;
    }
    if (is_long && optopt != 0) { /* a known flag given a value */
        mg_cmd_usage_error(p, "option '%s' takes no value", name);
        return;
    }
    char candidates[512] = "";
    int matches = 0;
    for (int i = 0; is_long && p->longopts[i].name; i++)
        if (!strncmp(p->longopts[i].name, name + 2, strlen(name + 2))) {
            size_t used = strlen(candidates);
            snprintf(candidates + used, sizeof candidates - used, "%s--%s", matches++ ? ", " : "",
                     p->longopts[i].name);
        }
    if (matches > 1)
        mg_cmd_usage_error(p, "ambiguous option '%s' (%s)", name, candidates);
    else
        mg_cmd_usage_error(p, "unknown option '%s'", name);
}

int mg_cmd_next(mg_cmd_parser *p)
{
    while (!p->stop) {
        const int at = optind > 0 ? optind : 1;
        const char *arg = at < p->argc ? p->argv[at] : "";
        int index = -1;
        optarg = NULL;
        optopt = 0;
        const int c = getopt_long(p->argc, p->argv, p->shortopts, p->longopts, &index);
        if (c == -1) {
            /* what follows "--" is positional, options or not */
            while (optind < p->argc && !p->stop)
                add_arg(p, p->argv[optind++]);
            return 0;
        }
        if (c == 1) {
            add_arg(p, optarg);
            continue;
        }
        if (c == '?' || c == ':') {
            bad_option(p, c, arg);
            return 0;
        }
        p->value = optarg;
        if (index >= 0)
            snprintf(p->option, sizeof p->option, "--%s", p->longopts[index].name);
        else
            snprintf(p->option, sizeof p->option, "-%c", c);
        if (c == 'h') {
            if (is_root())
                fputs(p->usage, stdout);
            p->stop = true;
            p->status = 0;
            return 0;
        }
        return c;
    }
    return 0;
}

bool mg_cmd_parse_end(mg_cmd_parser *p, int min, int max, const char *what)
{
    if (p->stop)
        return false;
    if (p->n_args < min)
        return mg_cmd_usage_error(p, "missing %s", what), false;
    if (p->n_args > max)
        return mg_cmd_usage_error(p, "unexpected argument '%s'", p->args[max]), false;
    return true;
}

bool mg_cmd_parse_plain(mg_cmd_parser *p, const char *prog, const char *usage, int argc, char **argv, int min,
                        int max, const char *what)
{
    mg_cmd_parse_begin(p, prog, usage, "", NULL, argc, argv);
    while (mg_cmd_next(p))
        ;
    return mg_cmd_parse_end(p, min, max, what);
}

bool mg_cmd_int(mg_cmd_parser *p, long long lo, long long hi, long long *out)
{
    const char *s = p->value ? p->value : "";
    char *end = NULL;
    errno = 0;
    const long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        mg_cmd_usage_error(p, "option '%s': '%s' is not an integer in [%lld, %lld]", p->option, s, lo, hi);
        return false;
    }
    *out = v;
    return true;
}

bool mg_cmd_positive(mg_cmd_parser *p, double *out)
{
    const char *s = p->value ? p->value : "";
    char *end = NULL;
    const double v = strtod(s, &end);
    if (end == s || *end || !(v > 0) || !isfinite(v)) {
        mg_cmd_usage_error(p, "option '%s': '%s' is not a positive number", p->option, s);
        return false;
    }
    *out = v;
    return true;
}
