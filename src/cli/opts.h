/*
 * The command line's option tables and the one parser over them (opts.c). Every subcommand owns
 * ONE table (struct cli_opt: name, value kind, metavariable, default, help text); the model options
 * of estimate, tradeoff and run are one shared table (cli_model_opts). From a command's tables come
 * getopt_long's `struct option[]`, the --help text (`snapmem help CMD` prints the same) and the
 * bash completion (`snapmem completion bash`), so the three cannot drift apart.
 *
 * Parsing rules (docs/CLI.md): `--opt value` and `--opt=value`; `-o FILE` / `-oFILE`; `--` ends the
 * options; abbreviations are refused (a long option is spelled in full: getopt_long's unique-prefix
 * matching is never reached); a value that is itself one of the command's options (`--out --force`)
 * is a missing value (`--out=--force` gives it deliberately); an empty value, a value given to a
 * flag and an argument where the command takes none are errors. Each error is one line on stderr
 * naming the option and what was expected (the closest valid option for an unknown one) and the
 * command exits 2.
 */
#ifndef SNAPMEM_CLI_OPTS_H
#define SNAPMEM_CLI_OPTS_H

#include <getopt.h>
#include <stdio.h>

/* What an option's value is: decides the help's metavariable and the completion. */
enum cli_kind {
	CLI_FLAG,    /* no value */
	CLI_TEXT,    /* free text */
	CLI_NUMBER,  /* a number (sm_parse_u64 / sm_parse_double) */
	CLI_SIZE,    /* a size with a unit (sm_parse_size) */
	CLI_FILE,    /* a file name */
	CLI_DIR,     /* a directory */
	CLI_CHOICE   /* one of the '|'-separated words of the metavariable */
};

#define CLI_HIDDEN 1u /* test hooks: parsed, not in --help or the completion (docs/CLI.md) */
#define CLI_MODEL 2u  /* a model option: the command passes it to sm_model_option_apply */

/* ids every table may use; a command's own ids start at CLI_ID_FIRST */
enum { CLI_ID_HELP = 1, CLI_ID_MODEL, CLI_ID_FIRST };

typedef struct cli_opt {
	const char *name;     /* long name without "--"; NULL ends a table */
	char shortc;          /* short letter ('o') or 0 */
	enum cli_kind kind;
	const char *metavar;  /* "SIZE", "float32|float64"; NULL for a flag */
	const char *def;      /* the default, in words ("float32", "off", "standard output") */
	const char *help;     /* one paragraph, wrapped when printed */
	int id;               /* what the command switches on */
	unsigned flags;       /* CLI_HIDDEN, CLI_MODEL */
} cli_opt;

typedef struct cli_cmd {
	const char *name;       /* "estimate" */
	const char *summary;    /* one line for `snapmem help` */
	const char *synopsis;   /* "usage: snapmem estimate ...\n" lines */
	const char *about;      /* paragraphs after the synopsis, or NULL */
	const cli_opt *opts;    /* the command's own table */
	int model;              /* the shared model options as well */
	const char *operands;   /* "RUNDIR..." when arguments are taken, NULL when none are */
	int (*fn)(int argc, char **argv);
} cli_cmd;

/* The model options of estimate, tradeoff and run (CLI_MODEL; applied with
 * sm_model_option_apply("--NAME", value)). */
extern const cli_opt cli_model_opts[];

/* The -h/--help entry every command has. */
extern const cli_opt cli_help_opt;

#define CLI_MAX_OPTS 48

typedef struct cli_parser {
	const cli_cmd *cmd;
	int argc;
	char **argv;
	int quiet;                          /* print nothing (MPI ranks other than 0, pre-scans) */
	const cli_opt *opt[CLI_MAX_OPTS];   /* by getopt_long index */
	struct option lo[CLI_MAX_OPTS + 1];
	int nopt;
	char shorts[16];
	int ended;                          /* getopt_long said -1: operands from argv[optind] */
	int next_operand;
	char name[80];                      /* "--positions": the option just returned, spelled out */
} cli_parser;

/* cli_next's answers */
enum {
	CLI_END = 0,      /* no more arguments */
	CLI_OPTION = 1,   /* *opt and *val (NULL for a flag) */
	CLI_OPERAND = 2,  /* *val: an argument (only for commands with operands) */
	CLI_HELP = -1,    /* the help was printed on stdout: exit 0 */
	CLI_BAD = -2      /* one line was printed on stderr: exit 2 */
};

void cli_parser_init(cli_parser *p, const cli_cmd *cmd, int argc, char **argv);

/* The next option or operand; see the enum above. After CLI_BAD the parser may be called again
 * (the offending argument is skipped). */
int cli_next(cli_parser *p, const cli_opt **opt, const char **val);

/* The exit status for a CLI_HELP / CLI_BAD answer (0 / 2). */
int cli_parse_status(int rc);

/* Prints "snapmem CMD: MSG (see 'snapmem CMD --help')" unless quiet; returns 2. */
int cli_parse_error(const cli_parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The full help of a command: synopsis, about, every option with its default. */
void cli_print_help(FILE *f, const cli_cmd *cmd);

/* The bash completion script for the given commands. */
void cli_print_bash_completion(FILE *f, const cli_cmd *const *cmds, size_t n);

/* The candidate closest to word by edit distance, or NULL when none is close enough to suggest. */
const char *cli_closest(const char *word, const char *const *cands, size_t n);

#endif
