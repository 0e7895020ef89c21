/*
 * The command line's option parser, help and completion, all generated from the commands' option
 * tables (opts.h; docs/CLI.md is the user's description). Parsing is getopt_long in
 * RETURN_IN_ORDER mode ("-" in front of the short options: arguments come back in order, no
 * permutation, POSIXLY_CORRECT or not). Before getopt_long sees a long option, the spelled name is
 * looked up exactly in the command's table, so that getopt_long's unique-prefix matching is never
 * reached: an abbreviation is refused by name, with the options it could mean.
 */
#include "cli/opts.h"

#include <assert.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "snapmem/error.h"
#include "snapmem/model.h"

const cli_opt cli_model_opts[] = {
	{SM_OPT_POSITIONS, 0, CLI_CHOICE, SM_MODEL_POSITIONS_CHOICES, SM_DTYPE_NAME_F32,
	 "dtype of Coordinates in memory", CLI_ID_MODEL, CLI_MODEL},
	{SM_OPT_SELECT, 0, CLI_CHOICE, SM_MODEL_SELECT_CHOICES, SM_SELECT_NAME_INDEX,
	 "sphere selection: a uniform grid index, or the notebook's one-byte-per-cell mask per halo",
	 CLI_ID_MODEL, CLI_MODEL},
	{SM_OPT_TEMPERATURE, 0, CLI_CHOICE, SM_MODEL_TEMPERATURE_CHOICES, SM_TEMP_NAME_IN_MEMORY,
	 "load the three gas fields whole, or stream them in blocks of --stream-block cells",
	 CLI_ID_MODEL, CLI_MODEL},
	{SM_OPT_STREAM_BLOCK, 0, CLI_NUMBER, "N", "131072", "cells per streaming block",
	 CLI_ID_MODEL, CLI_MODEL},
	{SM_OPT_HALOS, 0, CLI_NUMBER, "N", "every halo above --mass-min",
	 "the N most massive halos (instead of the mass cut)", CLI_ID_MODEL, CLI_MODEL},
	{SM_OPT_MASS_MIN, 0, CLI_NUMBER, "MSUN", "1e14",
	 "halos with M200c strictly above MSUN solar masses", CLI_ID_MODEL, CLI_MODEL},
	{SM_OPT_MPI, 0, CLI_FLAG, NULL, "off",
	 "the distributed strategy: ranks share the chunk files and stream their cells past a halo "
	 "index; figures per rank (docs/MPI.md). `run --mpi` is started by mpirun",
	 CLI_ID_MODEL, CLI_MODEL},
	{SM_OPT_RANKS, 0, CLI_NUMBER, "R", "1; under run --mpi, mpirun's -np",
	 "MPI ranks, 1 to 1048576; R > 1 implies --mpi. Under `run --mpi` it must equal mpirun's -np",
	 CLI_ID_MODEL, CLI_MODEL},
	{SM_OPT_SPHERE_CELLS, 0, CLI_NUMBER, "N",
	 "from the largest halo's mass and the mean density", "cells within 2 R200 of the largest halo (an override)", CLI_ID_MODEL, CLI_MODEL},
	{SM_OPT_CALIBRATE, 0, CLI_DIR, "RUNDIR", "none",
	 "take the sphere cells measured by an earlier run (its memory.json)", CLI_ID_MODEL,
	 CLI_MODEL},
	{NULL, 0, CLI_FLAG, NULL, NULL, NULL, 0, 0},
};

const cli_opt cli_help_opt = {"help", 'h', CLI_FLAG, NULL, NULL, "print this help and exit",
			      CLI_ID_HELP, 0};

/* ---- edit distance and suggestions ---------------------------------------------------------- */

/* Optimal string alignment distance (Levenshtein with adjacent transpositions), capped inputs. */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j;
	size_t d[66][66];

	if (la > 64)
		la = 64;
	if (lb > 64)
		lb = 64;
	for (i = 0; i <= la; i++)
		d[i][0] = i;
	for (j = 0; j <= lb; j++)
		d[0][j] = j;
	for (i = 1; i <= la; i++) {
		for (j = 1; j <= lb; j++) {
			size_t c = a[i - 1] == b[j - 1] ? 0 : 1;
			size_t v = d[i - 1][j] + 1;

			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + c < v)
				v = d[i - 1][j - 1] + c;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	}
	return d[la][lb];
}

const char *cli_closest(const char *word, const char *const *cands, size_t n)
{
	const char *best = NULL;
	size_t bd = (size_t)-1, i;

	for (i = 0; i < n; i++) {
		size_t dd = distance(word, cands[i]);

		if (dd < bd) {
			bd = dd;
			best = cands[i];
		}
	}
	/* close enough to be a typo: two edits, or a third of the word */
	if (best == NULL || (bd > 2 && bd * 3 > strlen(best)))
		return NULL;
	return best;
}

/* ---- the parser ----------------------------------------------------------------------------- */

static void add(cli_parser *p, const cli_opt *o)
{
	struct option *l;

	assert(p->nopt < CLI_MAX_OPTS); /* the tables are ours: a larger one is a programming error */
	l = &p->lo[p->nopt];
	l->name = o->name;
	l->has_arg = o->kind == CLI_FLAG ? no_argument : required_argument;
	l->flag = NULL;
	l->val = o->shortc != 0 ? o->shortc : 256 + p->nopt;
	p->opt[p->nopt++] = o;
	if (o->shortc != 0) {
		size_t k = strlen(p->shorts);

		p->shorts[k++] = o->shortc;
		if (o->kind != CLI_FLAG)
			p->shorts[k++] = ':';
		p->shorts[k] = '\0';
	}
}

void cli_parser_init(cli_parser *p, const cli_cmd *cmd, int argc, char **argv)
{
	const cli_opt *o;

	memset(p, 0, sizeof(*p));
	p->cmd = cmd;
	p->argc = argc;
	p->argv = argv;
	strcpy(p->shorts, "-:");
	for (o = cmd->opts; o != NULL && o->name != NULL; o++)
		add(p, o);
	if (cmd->model)
		for (o = cli_model_opts; o->name != NULL; o++)
			add(p, o);
	add(p, &cli_help_opt);
	memset(&p->lo[p->nopt], 0, sizeof(p->lo[p->nopt]));
	optind = 0; /* glibc: start over (a second parse of the same argv) */
	opterr = 0;
}

int cli_parse_status(int rc)
{
	return rc == CLI_HELP ? 0 : 2;
}

int cli_parse_error(const cli_parser *p, const char *fmt, ...)
{
	va_list ap;

	if (p->quiet)
		return 2;
	fprintf(stderr, "snapmem %s: ", p->cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see 'snapmem %s --help')\n", p->cmd->name);
	return 2;
}

/* The table entry spelled exactly name (len bytes), hidden ones included; -1 when none. */
static int find_exact(const cli_parser *p, const char *name, size_t len)
{
	int i;

	for (i = 0; i < p->nopt; i++)
		if (strlen(p->opt[i]->name) == len && strncmp(p->opt[i]->name, name, len) == 0)
			return i;
	return -1;
}

/* 1 when s is "--" or spells one of the command's long options ("--out", "--out=x"). */
static int is_option_word(const cli_parser *p, const char *s)
{
	const char *eq;

	if (strncmp(s, "--", 2) != 0)
		return 0;
	if (s[2] == '\0')
		return 1;
	eq = strchr(s + 2, '=');
	return find_exact(p, s + 2, eq != NULL ? (size_t)(eq - s - 2) : strlen(s + 2)) >= 0;
}

static const char *what_value(const cli_opt *o)
{
	switch (o->kind) {
	case CLI_SIZE:
		return "a size with a unit, e.g. 512G";
	case CLI_CHOICE:
		return o->metavar;
	default:
		return o->metavar != NULL ? o->metavar : "a value";
	}
}

/* An unknown or abbreviated long option: one line with what it could have been. */
static int unknown_long(const cli_parser *p, const char *arg, const char *name, size_t len)
{
	const char *cands[CLI_MAX_OPTS];
	char word[72], list[512] = "";
	size_t n = 0, nprefix = 0, i;
	const char *first = NULL, *best;

	snprintf(word, sizeof(word), "%.*s", (int)(len < 64 ? len : 64), name);
	for (i = 0; i < (size_t)p->nopt; i++) {
		const char *c = p->opt[i]->name;

		if (p->opt[i]->flags & CLI_HIDDEN)
			continue;
		cands[n++] = c;
		if (len > 0 && strncmp(c, name, len) == 0) {
			size_t k = strlen(list);

			if (nprefix++ == 0)
				first = c;
			snprintf(list + k, sizeof(list) - k, "%s--%s", k > 0 ? ", " : "", c);
		}
	}
	if (nprefix == 1)
		return cli_parse_error(p, "unknown option '%s': abbreviations are not accepted; did "
				       "you mean '--%s'?", arg, first);
	if (nprefix > 1)
		return cli_parse_error(p, "ambiguous option '%s' (abbreviations are not accepted): "
				       "%s", arg, list);
	best = cli_closest(word, cands, n);
	if (best != NULL)
		return cli_parse_error(p, "unknown option '%s'; did you mean '--%s'?", arg, best);
	return cli_parse_error(p, "unknown option '%s'", arg);
}

/* A single-dash word getopt_long does not know ("-x", "-snap"). */
static int unknown_short(const cli_parser *p, const char *arg)
{
	const char *cands[CLI_MAX_OPTS], *best;
	size_t n = 0, i;

	for (i = 0; i < (size_t)p->nopt; i++)
		if (!(p->opt[i]->flags & CLI_HIDDEN))
			cands[n++] = p->opt[i]->name;
	best = strlen(arg) > 2 ? cli_closest(arg + 1, cands, n) : NULL;
	if (best != NULL)
		return cli_parse_error(p, "unknown option '%s'; did you mean '--%s'?", arg, best);
	return cli_parse_error(p, "unknown option '%s'", arg);
}

static const cli_opt *by_val(const cli_parser *p, int val, int *index)
{
	int i;

	for (i = 0; i < p->nopt; i++)
		if (p->lo[i].val == val) {
			*index = i;
			return p->opt[i];
		}
	return NULL;
}

static void set_name(cli_parser *p, const cli_opt *o)
{
	snprintf(p->name, sizeof(p->name), "--%s", o->name);
}

/* The spelling of an option in messages: "--node-mem", or "-o" when the short one was used. */
static const char *spelled(const cli_parser *p, const cli_opt *o, const char *arg, char *buf,
			   size_t len)
{
	if (o->shortc != 0 && arg[0] == '-' && arg[1] != '-')
		snprintf(buf, len, "-%c", o->shortc);
	else
		snprintf(buf, len, "--%s", o->name);
	return buf;
}

/*
 * An argument where the command takes none: one line naming it and every other argument after
 * it (argv[from...]), found by reading the rest of the line as getopt_long would (an option's
 * separate value is not an argument; after "--" everything is), without moving the parser.
 */
static void unexpected(const cli_parser *p, const char *first, int from, int after_dashes)
{
	char list[512];
	size_t k;
	int i, n = 1;

	snprintf(list, sizeof(list), "'%s'", first);
	for (i = from; i < p->argc; i++) {
		const char *a = p->argv[i];

		if (!after_dashes && strcmp(a, "--") == 0) {
			after_dashes = 1;
			continue;
		}
		if (!after_dashes && a[0] == '-' && a[1] != '\0') {
			int j = -1;

			if (a[1] == '-' && strchr(a, '=') == NULL)
				j = find_exact(p, a + 2, strlen(a + 2));
			else if (a[1] != '-' && a[2] == '\0')
				for (j = p->nopt - 1; j >= 0 && p->opt[j]->shortc != a[1]; j--)
					;
			if (j >= 0 && p->opt[j]->kind != CLI_FLAG)
				i++;
			continue;
		}
		k = strlen(list);
		snprintf(list + k, sizeof(list) - k, ", '%s'", a);
		n++;
	}
	cli_parse_error(p, "unexpected argument%s %s (%s takes options only)", n > 1 ? "s" : "",
			list, p->cmd->name);
}

int cli_next(cli_parser *p, const cli_opt **opt, const char **val)
{
	const char *arg;
	const cli_opt *o;
	char sp[80];
	int at, c, idx = -1;

	*opt = NULL;
	*val = NULL;
	if (p->ended) {
		if (p->next_operand >= p->argc)
			return CLI_END;
		*val = p->argv[p->next_operand++];
		if (p->cmd->operands == NULL) {
			unexpected(p, *val, p->next_operand, 1);
			return CLI_BAD;
		}
		return CLI_OPERAND;
	}
	at = optind == 0 ? 1 : optind;
	arg = at < p->argc ? p->argv[at] : NULL;
	if (arg != NULL && strncmp(arg, "--", 2) == 0 && arg[2] != '\0') {
		const char *name = arg + 2, *eq = strchr(name, '=');
		size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
		int k = find_exact(p, name, len);

		if (k < 0) {
			optind = at + 1;
			unknown_long(p, arg, name, len);
			return CLI_BAD;
		}
		if (eq != NULL && p->opt[k]->kind == CLI_FLAG) {
			optind = at + 1;
			cli_parse_error(p, "option '--%s' takes no value (got '%s')", p->opt[k]->name,
					arg);
			return CLI_BAD;
		}
	}
	c = getopt_long(p->argc, p->argv, p->shorts, p->lo, &idx);
	if (c == -1) {
		p->ended = 1;
		p->next_operand = optind;
		return cli_next(p, opt, val);
	}
	if (c == 1) {
		*val = optarg;
		if (p->cmd->operands == NULL) {
			unexpected(p, *val, optind, 0);
			return CLI_BAD;
		}
		return CLI_OPERAND;
	}
	if (c == '?') {
		/* only single-dash words come here (long ones were checked above), and always at
		 * their first letter: -h prints the help and -o takes the rest as its value */
		if (arg != NULL && arg[0] == '-' && arg[1] != '-' && arg[1] != '\0') {
			unknown_short(p, arg);
		} else {
			char s[3] = {'-', (char)optopt, '\0'};

			cli_parse_error(p, "unknown option '%s'", s);
		}
		if (optind <= at)
			optind = at + 1;
		return CLI_BAD;
	}
	if (c == ':') {
		o = by_val(p, optopt, &idx);
		if (o == NULL) {
			optind = at + 1;
			cli_parse_error(p, "missing value");
			return CLI_BAD;
		}
		spelled(p, o, arg != NULL ? arg : "--", sp, sizeof(sp));
		cli_parse_error(p, "%s: missing value (expected %s)", sp, what_value(o));
		return CLI_BAD;
	}
	o = idx >= 0 ? p->opt[idx] : by_val(p, c, &idx);
	if (o == NULL) {
		cli_parse_error(p, "unknown option '%s'", arg != NULL ? arg : "?");
		return CLI_BAD;
	}
	set_name(p, o);
	if (o->id == CLI_ID_HELP) {
		if (!p->quiet)
			cli_print_help(stdout, p->cmd);
		return CLI_HELP;
	}
	if (o->kind != CLI_FLAG) {
		spelled(p, o, arg != NULL ? arg : "--", sp, sizeof(sp));
		/* `--out --force`: the value is the next option, not a directory named "--force" */
		if (optarg == p->argv[optind - 1] && is_option_word(p, optarg)) {
			optind--;
			cli_parse_error(p, "%s: missing value (expected %s) before '%s'", sp,
					what_value(o), optarg);
			optind++;
			return CLI_BAD;
		}
		if (optarg[0] == '\0') {
			cli_parse_error(p, "%s: empty value (expected %s)", sp, what_value(o));
			return CLI_BAD;
		}
		*val = optarg;
	}
	*opt = o;
	return CLI_OPTION;
}

/* ---- help ----------------------------------------------------------------------------------- */

#define HELP_WIDTH 100
#define HELP_COL 28

static void print_opt(FILE *f, const cli_opt *o)
{
	char left[96], text[1024];
	const char *s = text;
	int col;

	if (o->shortc != 0)
		col = snprintf(left, sizeof(left), "  -%c, --%s%s%s", o->shortc, o->name,
			       o->metavar ? " " : "", o->metavar ? o->metavar : "");
	else
		col = snprintf(left, sizeof(left), "  --%s%s%s", o->name, o->metavar ? " " : "",
			       o->metavar ? o->metavar : "");
	/* "(default: X" is kept on one line: '\x1f' is a space the wrapping does not break at */
	if (o->def != NULL)
		snprintf(text, sizeof(text), "%s (default:\x1f%s)", o->help, o->def);
	else
		snprintf(text, sizeof(text), "%s", o->help);
	fputs(left, f);
	if (col >= HELP_COL - 1)
		fprintf(f, "\n%*s", HELP_COL, "");
	else
		fprintf(f, "%*s", HELP_COL - col, "");
	col = HELP_COL;
	/* the help wrapped at HELP_WIDTH, continuation lines at HELP_COL */
	while (*s != '\0') {
		int w = (int)strcspn(s, " ");

		if (col > HELP_COL && col + 1 + w > HELP_WIDTH) {
			fprintf(f, "\n%*s", HELP_COL, "");
			col = HELP_COL;
		} else if (col > HELP_COL) {
			fputc(' ', f);
			col++;
		}
		for (; w > 0; w--, s++, col++)
			fputc(*s == '\x1f' ? ' ' : *s, f);
		while (*s == ' ')
			s++;
	}
	fputc('\n', f);
}

void cli_print_help(FILE *f, const cli_cmd *cmd)
{
	const cli_opt *o;

	fputs(cmd->synopsis, f);
	if (cmd->about != NULL) {
		fputc('\n', f);
		fputs(cmd->about, f);
	}
	fprintf(f, "\noptions:\n");
	for (o = cmd->opts; o != NULL && o->name != NULL; o++)
		if (!(o->flags & CLI_HIDDEN))
			print_opt(f, o);
	print_opt(f, &cli_help_opt);
	if (cmd->model) {
		fprintf(f, "\nmodel options (the same for estimate, tradeoff and run):\n");
		for (o = cli_model_opts; o->name != NULL; o++)
			print_opt(f, o);
	}
	fprintf(f, "\nOptions: --opt VALUE or --opt=VALUE, spelled in full; -- ends the options.\n"
		"Exit status: 0 done, 1 negative verdict, 2 bad input or usage, 3 out of memory,\n"
		"128+N stopped by signal N (docs/CLI.md).\n");
}

/* ---- bash completion ------------------------------------------------------------------------ */

static void completion_words(FILE *f, const cli_cmd *cmd)
{
	const cli_opt *o;
	int first = 1;

	for (o = cmd->opts; o != NULL && o->name != NULL; o++) {
		if (o->flags & CLI_HIDDEN)
			continue;
		fprintf(f, "%s--%s", first ? "" : " ", o->name);
		first = 0;
		if (o->shortc != 0)
			fprintf(f, " -%c", o->shortc);
	}
	if (cmd->model)
		for (o = cli_model_opts; o->name != NULL; o++)
			fprintf(f, " --%s", o->name);
	fprintf(f, "%s--help -h", first ? "" : " ");
}

/* The case arms for the value after prev, by kind. */
static void completion_values(FILE *f, const cli_opt *tab, int kind_group)
{
	const cli_opt *o;
	int any = 0;

	for (o = tab; o != NULL && o->name != NULL; o++) {
		int g;

		if (o->kind == CLI_FLAG || (o->flags & CLI_HIDDEN))
			continue;
		g = o->kind == CLI_FILE ? 1 : o->kind == CLI_DIR ? 2 : o->kind == CLI_CHOICE ? 3 : 4;
		if (g != kind_group)
			continue;
		if (kind_group == 3) {
			const char *m = o->metavar;

			fprintf(f, "\t\t--%s)\n\t\t\tCOMPREPLY=($(compgen -W '", o->name);
			for (; *m != '\0'; m++)
				fputc(*m == '|' ? ' ' : *m, f);
			fprintf(f, "' -- \"$cur\"))\n\t\t\treturn 0 ;;\n");
			continue;
		}
		fprintf(f, "%s--%s", any ? "|" : "\t\t", o->name);
		if (o->shortc != 0)
			fprintf(f, "|-%c", o->shortc);
		any = 1;
	}
	if (!any)
		return;
	if (kind_group == 1)
		fprintf(f, ")\n\t\t\tcompopt -o filenames 2>/dev/null\n"
			"\t\t\tCOMPREPLY=($(compgen -f -- \"$cur\"))\n\t\t\treturn 0 ;;\n");
	else if (kind_group == 2)
		fprintf(f, ")\n\t\t\tcompopt -o filenames 2>/dev/null\n"
			"\t\t\tCOMPREPLY=($(compgen -d -- \"$cur\"))\n\t\t\treturn 0 ;;\n");
	else
		fprintf(f, ")\n\t\t\treturn 0 ;;\n");
}

void cli_print_bash_completion(FILE *f, const cli_cmd *const *cmds, size_t n)
{
	size_t i;
	int g;

	fprintf(f, "# bash completion for snapmem; generated by `snapmem completion bash` from the\n"
		"# commands' option tables (docs/CLI.md). Install as\n"
		"# $PREFIX/share/bash-completion/completions/snapmem, or source it.\n"
		"_snapmem()\n{\n"
		"\tlocal cur prev cmd\n"
		"\tCOMPREPLY=()\n"
		"\tcur=${COMP_WORDS[COMP_CWORD]}\n"
		"\tprev=\n"
		"\t[ \"$COMP_CWORD\" -ge 1 ] && prev=${COMP_WORDS[COMP_CWORD-1]}\n"
		"\t# --opt=VALUE: bash splits at '=' (COMP_WORDBREAKS)\n"
		"\tif [ \"$cur\" = \"=\" ]; then\n"
		"\t\tcur=\n"
		"\telif [ \"$prev\" = \"=\" ] && [ \"$COMP_CWORD\" -ge 2 ]; then\n"
		"\t\tprev=${COMP_WORDS[COMP_CWORD-2]}\n"
		"\tfi\n"
		"\tif [ \"$COMP_CWORD\" -le 1 ]; then\n"
		"\t\tCOMPREPLY=($(compgen -W '");
	for (i = 0; i < n; i++)
		fprintf(f, "%s%s", i > 0 ? " " : "", cmds[i]->name);
	fprintf(f, " --help --version' -- \"$cur\"))\n"
		"\t\treturn 0\n"
		"\tfi\n"
		"\tcmd=${COMP_WORDS[1]}\n"
		"\tcase $cmd in\n");
	for (i = 0; i < n; i++) {
		const cli_cmd *c = cmds[i];

		fprintf(f, "\t%s)\n\t\tcase $prev in\n", c->name);
		for (g = 1; g <= 4; g++) {
			completion_values(f, c->opts, g);
			if (c->model)
				completion_values(f, cli_model_opts, g);
		}
		fprintf(f, "\t\tesac\n");
		if (strcmp(c->name, "help") == 0) {
			size_t k;

			fprintf(f, "\t\tif [[ $cur != -* ]]; then\n\t\t\tCOMPREPLY=($(compgen -W '");
			for (k = 0; k < n; k++)
				fprintf(f, "%s%s", k > 0 ? " " : "", cmds[k]->name);
			fprintf(f, "' -- \"$cur\"))\n\t\t\treturn 0\n\t\tfi\n");
		} else if (strcmp(c->name, "completion") == 0) {
			fprintf(f, "\t\tif [[ $cur != -* ]]; then\n"
				"\t\t\tCOMPREPLY=($(compgen -W 'bash' -- \"$cur\"))\n"
				"\t\t\treturn 0\n\t\tfi\n");
		} else if (c->operands != NULL) {
			fprintf(f, "\t\tif [[ $cur != -* ]]; then\n"
				"\t\t\tcompopt -o filenames 2>/dev/null\n"
				"\t\t\tCOMPREPLY=($(compgen -d -- \"$cur\"))\n"
				"\t\t\treturn 0\n\t\tfi\n");
		}
		fprintf(f, "\t\tCOMPREPLY=($(compgen -W '");
		completion_words(f, c);
		fprintf(f, "' -- \"$cur\"))\n\t\t;;\n");
	}
	fprintf(f, "\tesac\n\treturn 0\n}\ncomplete -F _snapmem snapmem\n");
}
