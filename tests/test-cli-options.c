/*
 * The command line as people type it (docs/CLI.md), through the snapmem binary, for every
 * subcommand: `--opt=value` gives the same output as `--opt value`; `--` ends the options;
 * abbreviations are refused (naming the option meant, or the ones an ambiguous prefix could be);
 * an unknown option names the closest one; a missing value, an empty value (`--opt=`), a value
 * given to a flag (`--strict=yes`) and an argument where none is taken are one line on stderr
 * and exit 2; `help CMD` and `CMD --help` print the same text, listing every option of the
 * command with its default; an unknown command exits 127 naming the closest; a size without a
 * unit is refused with a hint; the bash completion holds every option and is valid bash.
 *
 * The option lists below are the contract (docs/CLI.md): the help must list exactly these.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <jansson.h>

#include "snapmem/estimator.h"
#include "util.h"

struct opt {
	const char *name;
	int value;  /* takes a value */
};

#define MODEL_OPTS                                                                                 \
	{"positions", 1}, {"select", 1}, {"temperature", 1}, {"stream-block", 1}, {"halos", 1},   \
	{"mass-min", 1}, {"mpi", 0}, {"ranks", 1}, {"sphere-cells", 1}, {"calibrate", 1}

static const char *const model_names[] = {"positions", "select", "temperature", "stream-block",
					  "halos", "mass-min", "mpi", "ranks", "sphere-cells",
					  "calibrate"};

static int is_model(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(model_names) / sizeof(model_names[0]); i++)
		if (strcmp(name, model_names[i]) == 0)
			return 1;
	return 0;
}

static const struct opt estimate_opts[] = {
	{"base-path", 1}, {"snap", 1}, {"snapshot", 1}, {"pipeline", 1}, {"set", 1},
	{"node-mem", 1}, {"headroom", 1},
	{"format", 1}, {"output", 1}, MODEL_OPTS, {"help", 0}, {NULL, 0},
};
static const struct opt tradeoff_opts[] = {
	{"base-path", 1}, {"snap", 1}, {"snapshot", 1}, {"pipeline", 1}, {"set", 1},
	{"node-mem", 1}, {"headroom", 1},
	{"format", 1}, {"output", 1}, MODEL_OPTS, {"help", 0}, {NULL, 0},
};
static const struct opt run_opts[] = {
	{"base-path", 1}, {"snap", 1}, {"out", 1}, {"force", 0}, {"max-mem", 1}, {"no-profile", 0},
	MODEL_OPTS, {"help", 0}, {NULL, 0},
};
static const struct opt report_opts[] = {
	{"tolerance", 1}, {"abs-bound", 1}, {"strict", 0}, {"scale-to", 1}, {"pipeline", 1},
	{"node-mem", 1}, {"headroom", 1}, {"tradeoff", 0},
	{"format", 1}, {"output", 1}, {"help", 0}, {NULL, 0},
};
static const struct opt info_opts[] = {
	{"base-path", 1}, {"snap", 1}, {"snapshot", 1}, {"catalog", 1}, {"mass-min", 1},
	{"format", 1}, {"help", 0}, {NULL, 0},
};
static const struct opt mock_opts[] = {
	{"gas", 1}, {"dm", 1}, {"halos", 1}, {"small-halos", 1}, {"files", 1}, {"seed", 1},
	{"snap", 1}, {"box", 1}, {"header-only", 0}, {"gas-total", 1}, {"help", 0}, {NULL, 0},
};
static const struct opt profile_opts[] = {
	{"out", 1}, {"follow-fork", 0}, {"python-lines", 0}, {"preload", 1}, {"help", 0}, {NULL, 0},
};
static const struct opt diff_opts[] = {
	{"budget", 1}, {"format", 1}, {"output", 1}, {"help", 0}, {NULL, 0},
};
static const struct opt help_opts[] = {{"help", 0}, {NULL, 0}};

static const struct command {
	const char *name;
	const struct opt *opts;
} commands[] = {
	{"estimate", estimate_opts}, {"tradeoff", tradeoff_opts}, {"run", run_opts},
	{"report", report_opts},     {"profile", profile_opts},   {"diff", diff_opts},
	{"info", info_opts},         {"mock", mock_opts},         {"help", help_opts},
	{"completion", help_opts},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static char *dir, *mockdir, *rundir, *snapfile;

/* One line on stderr holding every needle, nothing on stdout, the given status. */
static void expect_line(tu_result *r, int status, const char *what, ...)
{
	va_list ap;
	const char *n;

	if (r->status != status || tu_count_lines(r->err) != 1 || r->out[0] != '\0')
		fail_msg("%s: status %d (want %d), stdout '%s', stderr '%s'", what, r->status, status,
			 r->out, r->err);
	va_start(ap, what);
	while ((n = va_arg(ap, const char *)) != NULL)
		if (strstr(r->err, n) == NULL)
			fail_msg("%s: stderr '%s' lacks '%s'", what, r->err, n);
	va_end(ap);
	tu_result_free(r);
}

/* Both command lines give the same status, stdout and stderr. */
static void expect_same(char *const *a, char *const *b, int status)
{
	tu_result x = tu_runv(a), y = tu_runv(b);

	if (x.status != status || y.status != status)
		fail_msg("%s %s...: status %d and %d, want %d; stderr '%s' / '%s'", a[0], a[1],
			 x.status, y.status, status, x.err, y.err);
	assert_string_equal(x.out, y.out);
	assert_string_equal(x.err, y.err);
	tu_result_free(&x);
	tu_result_free(&y);
}

#define A(...) ((char *const[]){__VA_ARGS__, NULL})

static int setup(void **state)
{
	tu_result r;

	(void)state;
	dir = tu_tmpdir();
	mockdir = tu_path(dir, "mock");
	rundir = tu_path(dir, "run");
	snapfile = tu_real_data("reduced_snap_247.hdf5");
	r = tu_run("mock", mockdir, "--gas", "2000", "--halos", "2", "--files", "2", NULL);
	if (r.status != 0)
		fail_msg("mock: %s", r.err);
	tu_result_free(&r);
	r = tu_run("run", "--base-path", mockdir, "--snap", "99", "--out", rundir, "--halos", "2",
		   NULL);
	if (r.status != 0)
		fail_msg("run: %s", r.err);
	tu_result_free(&r);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmtree(dir);
	free(dir);
	free(mockdir);
	free(rundir);
	free(snapfile);
	return 0;
}

/* ---- --opt=value is --opt value ---------------------------------------------------------- */

static void test_equals_form(void **state)
{
	char *o1 = tu_path(dir, "e1.json"), *o2 = tu_path(dir, "e2.json"), *o3 = tu_path(dir, "e3.json");
	char *oo = tu_fmt("-o%s", o3), *r1 = tu_path(dir, "r1"), *r2 = tu_path(dir, "r2");
	char *eq1 = tu_fmt("--snapshot=%s", snapfile), *eq2 = tu_fmt("--output=%s", o2);
	char *eq3 = tu_fmt("--base-path=%s", mockdir), *eq4 = tu_fmt("--out=%s", r2);
	char *j1 = tu_path(r1, "estimate.json"), *j2 = tu_path(r2, "estimate.json");
	char *t1, *t2;
	tu_result r;

	(void)state;
	expect_same(A("estimate", "--positions", "float64", "--node-mem", "300G", "--format", "json",
		      "--halos", "5"),
		    A("estimate", "--positions=float64", "--node-mem=300G", "--format=json",
		      "--halos=5"), 1); /* float64 needs 380.66 GiB: the configured run does not fit */
	expect_same(A("tradeoff", "--select", "mask", "--format", "markdown"),
		    A("tradeoff", "--select=mask", "--format=markdown"), 0);
	expect_same(A("info", "--snapshot", snapfile, "--format", "json", "--mass-min", "1e12"),
		    A("info", eq1, "--format=json", "--mass-min=1e12"), 0);
	expect_same(A("mock", mockdir, "--gas", "2000", "--halos", "2", "--files", "2"),
		    A("mock", "--gas=2000", "--halos=2", mockdir, "--files=2"), 0);
	/* options after, before and around the operand */
	expect_same(A("report", rundir, "--tolerance", "50", "--format", "json"),
		    A("report", "--tolerance=50", "--format=json", rundir), 0);
	/* -o FILE, -oFILE and --output=FILE write the same bytes */
	r = tu_run("estimate", "--ranks", "3", "-o", o1, NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	r = tu_run("estimate", "--ranks=3", eq2, NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	r = tu_run("estimate", "--ranks", "3", oo, NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	t1 = tu_read_file(o1, NULL);
	t2 = tu_read_file(o2, NULL);
	assert_non_null(t1);
	assert_non_null(t2);
	assert_string_equal(t1, t2);
	free(t2);
	t2 = tu_read_file(o3, NULL);
	assert_non_null(t2);
	assert_string_equal(t1, t2);
	free(t1);
	free(t2);
	/* run: the same estimate.json either way */
	r = tu_run("run", "--base-path", mockdir, "--snap", "99", "--out", r1, "--halos", "2",
		   "--no-profile", "--positions", "float64", NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	r = tu_run("run", eq3, "--snap=99", eq4,
		   "--halos=2", "--no-profile", "--positions=float64", NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	t1 = tu_read_file(j1, NULL);
	t2 = tu_read_file(j2, NULL);
	assert_non_null(t1);
	assert_non_null(t2);
	assert_non_null(strstr(t1, "float64"));
	{
		/* the same but for each run's own stamp (run.id, run.started) */
		json_t *a = json_loads(t1, 0, NULL), *b = json_loads(t2, 0, NULL);

		assert_non_null(a);
		assert_non_null(b);
		assert_true(json_is_object(json_object_get(a, "run")));
		json_object_del(a, "run");
		json_object_del(b, "run");
		assert_true(json_equal(a, b));
		json_decref(a);
		json_decref(b);
	}
	free(t1);
	free(t2);
	free(o1);
	free(o2);
	free(o3);
	free(oo);
	free(r1);
	free(r2);
	free(eq1);
	free(eq2);
	free(eq3);
	free(eq4);
	free(j1);
	free(j2);
}

/* ---- -- ends the options ------------------------------------------------------------------ */

static void test_double_dash(void **state)
{
	tu_result r;

	(void)state;
	/* after --, an option word is an argument */
	r = tu_run("estimate", "--", "--positions", "float64", NULL);
	expect_line(&r, 2, "estimate --", "unexpected arguments '--positions', 'float64'", NULL);
	r = tu_run("mock", "--", mockdir, "--gas", NULL);
	expect_line(&r, 2, "mock --", "more than one OUT_DIR", "'--gas'", NULL);
	/* and the operands after -- are read as before */
	expect_same(A("report", "--format", "json", "--", rundir),
		    A("report", "--format", "json", rundir), 0);
	expect_same(A("help", "--", "run"), A("run", "--help"), 0);
}

/* ---- help CMD is CMD --help, listing every option with its default ------------------------- */

/* The help's entry of option name: from its "--name" at a line start to the next entry. */
static char *entry(const char *help, const char *name)
{
	char *a = tu_fmt("\n  --%s", name), *b = NULL, *e;
	const char *p = strstr(help, a), *q;

	if (p == NULL) {
		free(a);
		a = tu_fmt(", --%s", name);
		p = strstr(help, a);
	}
	free(a);
	if (p == NULL)
		return NULL;
	p++;
	q = p;
	/* continuation lines start with spaces past column 4 */
	while ((e = strchr(q, '\n')) != NULL && (strncmp(e + 1, "      ", 6) == 0))
		q = e + 1;
	e = strchr(q, '\n');
	b = strndup(p, e != NULL ? (size_t)(e - p) : strlen(p));
	return b;
}

/* Number of option entries in a help text: lines starting "  --" or "  -X, --". */
static int count_entries(const char *help)
{
	int n = 0;
	const char *p = help;

	while ((p = strchr(p, '\n')) != NULL) {
		p++;
		if (strncmp(p, "  --", 4) == 0 || (strncmp(p, "  -", 3) == 0 && p[4] == ','))
			n++;
	}
	return n;
}

static void test_help(void **state)
{
	sm_model_options mo;
	size_t c;
	char buf[64];

	(void)state;
	sm_model_options_init(&mo);
	for (c = 0; c < NCOMMANDS; c++) {
		const struct command *cmd = &commands[c];
		tu_result h = tu_run("help", cmd->name, NULL), l = tu_run(cmd->name, "--help", NULL);
		tu_result s = tu_run(cmd->name, "-h", NULL);
		const struct opt *o;
		int n = 0;

		assert_int_equal(h.status, 0);
		assert_int_equal(l.status, 0);
		assert_int_equal(s.status, 0);
		assert_string_equal(h.err, "");
		assert_string_equal(h.out, l.out);
		assert_string_equal(h.out, s.out);
		assert_non_null(strstr(h.out, "usage: snapmem "));
		for (o = cmd->opts; o->name != NULL; o++, n++) {
			char *e = entry(h.out, o->name);

			if (e == NULL)
				fail_msg("snapmem help %s does not list --%s:\n%s", cmd->name, o->name,
					 h.out);
			if (strcmp(o->name, "help") != 0 && strstr(e, "(default: ") == NULL)
				fail_msg("snapmem help %s: --%s has no default: '%s'", cmd->name,
					 o->name, e);
			free(e);
		}
		if (count_entries(h.out) != n)
			fail_msg("snapmem help %s lists %d options, the contract %d:\n%s", cmd->name,
				 count_entries(h.out), n, h.out);
		/* the defaults printed are the library's */
		if (cmd->opts == estimate_opts) {
			char *e = entry(h.out, "stream-block");

			snprintf(buf, sizeof(buf), "(default: %llu)",
				 (unsigned long long)mo.stream_block);
			assert_non_null(strstr(e, buf));
			free(e);
			e = entry(h.out, "positions");
			assert_non_null(strstr(e, mo.positions == SM_DTYPE_F32 ? "(default: float32)"
										: "(default: float64)"));
			free(e);
			e = entry(h.out, "mass-min");
			assert_non_null(strstr(e, "(default: "));
			assert_true(strtod(strstr(e, "(default: ") + 10, NULL) == mo.mass_min);
			free(e);
		}
		tu_result_free(&h);
		tu_result_free(&l);
		tu_result_free(&s);
	}
	/* hidden test hooks are parsed but not listed */
	{
		tu_result h = tu_run("run", "--help", NULL), r;

		assert_null(strstr(h.out, "inject"));
		tu_result_free(&h);
		r = tu_run("run", "--inject-oom=", NULL);
		expect_line(&r, 2, "run --inject-oom=", "--inject-oom: empty value", NULL);
	}
	/* the list of commands: snapmem help = snapmem --help, every command named */
	{
		tu_result a = tu_run("help", NULL), b = tu_run("--help", NULL);

		assert_int_equal(a.status, 0);
		assert_int_equal(b.status, 0);
		assert_string_equal(a.out, b.out);
		for (c = 0; c < NCOMMANDS; c++) {
			snprintf(buf, sizeof(buf), "\n  %s ", commands[c].name);
			assert_non_null(strstr(a.out, buf));
		}
		tu_result_free(&a);
		tu_result_free(&b);
	}
}

/* ---- bad options, every command ----------------------------------------------------------- */

/* Runs CMD with extra arguments (after the fixed ones a command needs to get that far). */
static tu_result run_cmd(const struct command *cmd, const char *a1, const char *a2)
{
	char *argv[8];
	int n = 0;

	argv[n++] = (char *)cmd->name;
	if (strcmp(cmd->name, "report") == 0 || strcmp(cmd->name, "mock") == 0)
		argv[n++] = strcmp(cmd->name, "report") == 0 ? rundir : mockdir;
	argv[n++] = (char *)a1;
	if (a2 != NULL)
		argv[n++] = (char *)a2;
	argv[n] = NULL;
	return tu_runv(argv);
}

static void test_bad_options(void **state)
{
	size_t c;

	(void)state;
	for (c = 0; c < NCOMMANDS; c++) {
		const struct command *cmd = &commands[c];
		const struct opt *o;
		tu_result r;
		char *w, *what;
		int followed = 0;

		for (o = cmd->opts; o->name != NULL; o++) {
			size_t len = strlen(o->name);

			/* the model options are one table: every one under estimate, one elsewhere */
			if (is_model(o->name) && strcmp(cmd->name, "estimate") != 0 &&
			    strcmp(o->name, "positions") != 0 && strcmp(o->name, "mpi") != 0)
				continue;

			/* an abbreviation: refused, naming the option (or the candidates) */
			w = tu_fmt("--%.*s", (int)len - 1, o->name);
			what = tu_fmt("%s %s", cmd->name, w);
			r = run_cmd(cmd, w, o->value ? "1" : NULL);
			expect_line(&r, 2, what, "abbreviations are not accepted", w, o->name, NULL);
			free(w);
			free(what);
			/* a typo (two letters swapped): unknown, the closest option named */
			w = tu_fmt("--%s", o->name);
			{
				size_t i = 2;
				char t;

				while (w[i + 1] != '\0' && w[i] == w[i + 1])
					i++;
				t = w[i];
				w[i] = w[i + 1];
				w[i + 1] = t;
			}
			what = tu_fmt("%s %s", cmd->name, w);
			r = run_cmd(cmd, w, NULL);
			{
				char *hint = tu_fmt("did you mean '--%s'?", o->name);

				expect_line(&r, 2, what, "unknown option", w, hint, NULL);
				free(hint);
			}
			free(w);
			free(what);
			if (o->value) {
				/* missing at the end, empty, or followed by another option */
				w = tu_fmt("--%s", o->name);
				what = tu_fmt("%s %s (missing)", cmd->name, w);
				r = run_cmd(cmd, w, NULL);
				{
					char *m = tu_fmt("%s: missing value (expected ", w);

					expect_line(&r, 2, what, m, NULL);
					free(m);
				}
				free(what);
				if (!followed) {
					/* the next option is not taken as the value (once a command) */
					what = tu_fmt("%s %s --help", cmd->name, w);
					r = run_cmd(cmd, w, "--help");
					expect_line(&r, 2, what, "missing value", "before '--help'", NULL);
					free(what);
					followed = 1;
				}
				free(w);
				w = tu_fmt("--%s=", o->name);
				what = tu_fmt("%s %s", cmd->name, w);
				r = run_cmd(cmd, w, NULL);
				{
					char *m = tu_fmt("--%s: empty value (expected ", o->name);

					expect_line(&r, 2, what, m, NULL);
					free(m);
				}
				free(w);
				free(what);
			} else {
				/* a value given to a flag */
				w = tu_fmt("--%s=yes", o->name);
				what = tu_fmt("%s %s", cmd->name, w);
				r = run_cmd(cmd, w, NULL);
				{
					char *m = tu_fmt("option '--%s' takes no value (got '%s')", o->name,
						      w);

					expect_line(&r, 2, what, m, NULL);
					free(m);
				}
				free(w);
				free(what);
			}
		}
		/* unknown and single-dash words */
		r = run_cmd(cmd, "--frobnicate", NULL);
		expect_line(&r, 2, "--frobnicate", "unknown option '--frobnicate'", NULL);
		r = run_cmd(cmd, "-x", NULL);
		expect_line(&r, 2, "-x", "unknown option '-x'", NULL);
	}
}

static void test_specific_messages(void **state)
{
	tu_result r;

	(void)state;
	r = tu_run("estimate", "--node-men", "256G", NULL);
	expect_line(&r, 2, "node-men", "unknown option '--node-men'; did you mean '--node-mem'?",
		    NULL);
	r = tu_run("estimate", "--s", "1", NULL);
	expect_line(&r, 2, "--s", "ambiguous option '--s'", "--snap", "--snapshot", "--select",
		    NULL);
	r = tu_run("estimate", "-snap", "3", NULL);
	expect_line(&r, 2, "-snap", "unknown option '-snap'; did you mean '--snap'?", NULL);
	r = tu_run("report", rundir, "--strict=yes", NULL);
	expect_line(&r, 2, "--strict=yes", "option '--strict' takes no value (got '--strict=yes')",
		    NULL);
	r = tu_run("run", "--base-path", mockdir, "--snap", "99", "--out", "--force", NULL);
	expect_line(&r, 2, "--out --force", "--out: missing value (expected DIR) before '--force'",
		    NULL);
	r = tu_run("estimate", "-o", NULL);
	expect_line(&r, 2, "-o", "-o: missing value (expected FILE)", NULL);
	/* a value that starts with -- is given with = */
	r = tu_run("estimate", "--format=--json", NULL);
	expect_line(&r, 2, "--format=--json", "--format: '--json' is not table, json, markdown or slurm",
		    NULL);
	/* arguments where none are taken, named */
	r = tu_run("estimate", "extra", NULL);
	expect_line(&r, 2, "estimate extra", "unexpected argument 'extra'", NULL);
	r = tu_run("estimate", "one", "--halos", "3", "two", "-o", "x.json", "--", "--mpi", NULL);
	expect_line(&r, 2, "estimate one two -- --mpi",
		    "unexpected arguments 'one', 'two', '--mpi' (estimate takes options only)", NULL);
	assert_false(tu_exists("x.json"));
	r = tu_run("tradeoff", "--mpi", "yes", NULL);
	expect_line(&r, 2, "tradeoff --mpi yes", "unexpected argument 'yes'", NULL);
	r = tu_run("run", "--base-path", mockdir, "--snap", "99", "stray", NULL);
	expect_line(&r, 2, "run stray", "unexpected argument 'stray'", NULL);
	r = tu_run("info", "--snapshot", snapfile, "stray", NULL);
	expect_line(&r, 2, "info stray", "unexpected argument 'stray'", NULL);
	r = tu_run("help", "run", "report", NULL);
	expect_line(&r, 2, "help run report", "'run' and 'report'", NULL);
	r = tu_run("completion", "zsh", NULL);
	expect_line(&r, 2, "completion zsh", "'zsh' is not a supported shell", NULL);
	r = tu_run("--frobnicate", NULL);
	expect_line(&r, 2, "snapmem --frobnicate", "unknown option '--frobnicate'", NULL);
	r = tu_run(NULL);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "usage: snapmem"));
	tu_result_free(&r);
}

/* ---- exit codes ----------------------------------------------------------------------------- */

static void test_exit_codes(void **state)
{
	char *out = tu_path(dir, "over");
	tu_result r;

	(void)state;
	r = tu_run("estimate", "--node-mem", "1TiB", NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	r = tu_run("estimate", "--node-mem", "12M", NULL);
	assert_int_equal(r.status, 1);
	tu_result_free(&r);
	r = tu_run("run", "--base-path", mockdir, "--snap", "99", "--out", out, "--max-mem", "1K",
		   NULL);
	expect_line(&r, 3, "run --max-mem 1K", "--max-mem", NULL);
	assert_false(tu_exists(out));
	r = tu_run("estimat", NULL);
	expect_line(&r, 127, "estimat",
		    "snapmem: 'estimat' is not a snapmem command; did you mean 'estimate'?", NULL);
	r = tu_run("frobnicate", "--help", NULL);
	expect_line(&r, 127, "frobnicate", "'frobnicate' is not a snapmem command (commands: "
		    "estimate, tradeoff, run, report, profile, diff, info, mock, help, completion)", NULL);
	r = tu_run("help", "reprot", NULL);
	expect_line(&r, 127, "help reprot", "did you mean 'report'?", NULL);
	free(out);
}

/* ---- a size without a unit ------------------------------------------------------------------ */

static void test_unit_hint(void **state)
{
	char *out = tu_path(dir, "unit");
	tu_result r;

	(void)state;
	r = tu_run("estimate", "--node-mem", "256", NULL);
	expect_line(&r, 2, "--node-mem 256", "--node-mem: '256' has no unit: 256 what? e.g. 256G",
		    NULL);
	r = tu_run("estimate", "--node-mem=1.5", NULL);
	expect_line(&r, 2, "--node-mem=1.5", "'1.5' has no unit: 1.5 what? e.g. 1.5G", NULL);
	r = tu_run("run", "--base-path", mockdir, "--snap", "99", "--out", out, "--max-mem",
		   "2000000", NULL);
	expect_line(&r, 2, "--max-mem 2000000", "--max-mem: '2000000' has no unit", NULL);
	assert_false(tu_exists(out));
	r = tu_run("report", rundir, "--abs-bound", "65536", NULL);
	expect_line(&r, 2, "--abs-bound 65536", "--abs-bound: '65536' has no unit", NULL);
	/* with B for bytes, the same figure as with a binary unit */
	expect_same(A("report", rundir, "--abs-bound", "65536B", "--format", "json"),
		    A("report", rundir, "--abs-bound=64KiB", "--format=json"), 0);
	expect_same(A("estimate", "--node-mem", "274877906944B"),
		    A("estimate", "--node-mem", "256G"), 0);
	free(out);
}

/* ---- bash completion ------------------------------------------------------------------------ */

/* Runs a bash snippet with the completion sourced; returns its stdout (malloc'd). */
static char *complete(const char *script, const char *words)
{
	char *cmd = tu_fmt("bash -c 'source %s; COMP_WORDS=(%s); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); "
			"_snapmem; echo \"${COMPREPLY[*]}\"'", script, words);
	char buf[4096];
	size_t n;
	FILE *p = popen(cmd, "r");

	assert_non_null(p);
	n = fread(buf, 1, sizeof(buf) - 1, p);
	buf[n] = '\0';
	assert_int_equal(pclose(p), 0);
	free(cmd);
	return strdup(buf);
}

static void test_completion(void **state)
{
	char *script = tu_path(dir, "snapmem.bash"), *cmd, *got;
	tu_result r = tu_run("completion", "bash", NULL);
	FILE *f;
	size_t c;
	int st;

	(void)state;
	assert_int_equal(r.status, 0);
	assert_string_equal(r.err, "");
	for (c = 0; c < NCOMMANDS; c++) {
		const struct opt *o;
		char *w = tu_fmt("\t%s)\n", commands[c].name);

		assert_non_null(strstr(r.out, w));
		free(w);
		for (o = commands[c].opts; o->name != NULL; o++) {
			w = tu_fmt(" --%s ", o->name);
			if (strstr(r.out, w) == NULL && strstr(r.out, w + 1) == NULL)
				fail_msg("the completion lacks --%s of %s", o->name, commands[c].name);
			free(w);
		}
	}
	assert_null(strstr(r.out, "inject"));
	f = fopen(script, "w");
	assert_non_null(f);
	fputs(r.out, f);
	assert_int_equal(fclose(f), 0);
	tu_result_free(&r);
	cmd = tu_fmt("bash -n %s", script);
	st = system(cmd);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	free(cmd);
	/* and it completes */
	got = complete(script, "snapmem est");
	assert_string_equal(got, "estimate\n");
	free(got);
	got = complete(script, "snapmem estimate --node");
	assert_string_equal(got, "--node-mem\n");
	free(got);
	got = complete(script, "snapmem estimate --format \"\"");
	assert_string_equal(got, "table json markdown slurm\n");
	free(got);
	got = complete(script, "snapmem run --positions = f");
	assert_string_equal(got, "float32 float64\n");
	free(got);
	got = complete(script, "snapmem help rep");
	assert_string_equal(got, "report\n");
	free(got);
	free(script);
}

/* ---- docs/CLI.md names every option in its command's section ------------------------------ */

static char *section(const char *doc, const char *title)
{
	char *h = tu_fmt("\n## %s\n", title);
	const char *p = strstr(doc, h), *e;

	free(h);
	if (p == NULL)
		return NULL;
	e = strstr(p + 1, "\n## ");
	return strndup(p, e != NULL ? (size_t)(e - p) : strlen(p));
}

/* The default a help entry gives, whitespace collapsed ("" when none). */
static char *help_default(const char *e)
{
	const char *p = strstr(e, "(default: "), *q;
	char *d, *w;

	if (p == NULL)
		return strdup("");
	p += 10;
	q = strrchr(p, ')');
	assert_non_null(q);
	d = strndup(p, (size_t)(q - p));
	for (w = d, p = d; *p != '\0'; p++) {
		if (*p == '\n' || *p == ' ') {
			if (w > d && w[-1] != ' ')
				*w++ = ' ';
			continue;
		}
		*w++ = *p;
	}
	*w = '\0';
	return d;
}

/* The default column of option name's row in a docs/CLI.md table ("| `--name` |" or
 * "| `-o`, `--name` |" at a line start), backticks and the escapes of '|' dropped; NULL when there
 * is no such row. */
static char *doc_default(const char *sec, const char *name)
{
	char *key = tu_fmt("`--%s` |", name), *d, *w;
	const char *p = sec, *q;
	int cell = 0;

	while ((p = strstr(p, key)) != NULL) {
		const char *bol = p;

		while (bol > sec && bol[-1] != '\n')
			bol--;
		if (p - bol == 2 || (p - bol == 8 && strncmp(bol, "| `-", 4) == 0))
			break;
		p++;
	}
	free(key);
	if (p == NULL)
		return NULL;
	while (p > sec && p[-1] != '\n')
		p--;
	/* cells split at '|' not escaped: | option | value | default | what | */
	for (q = p; *q != '\n' && *q != '\0'; q++) {
		if (*q != '|' || (q > p && q[-1] == '\\'))
			continue;
		if (++cell == 3)
			p = q + 1;
		if (cell == 4)
			break;
	}
	assert_int_equal(cell, 4);
	d = strndup(p, (size_t)(q - p));
	for (w = d, p = d; *p != '\0'; p++)
		if (*p != '`' && *p != '\\')
			*w++ = *p;
	*w = '\0';
	while (w > d && w[-1] == ' ')
		*--w = '\0';
	for (w = d; *w == ' '; w++)
		;
	w = strdup(w);
	free(d);
	return w;
}

static void test_docs(void **state)
{
	const char *data = getenv("SNAPMEM_REAL_DATA");
	char *path, *doc, *model;
	size_t c;

	(void)state;
	assert_non_null(data);
	path = tu_fmt("%s/../../docs/CLI.md", data);
	doc = tu_read_file(path, NULL);
	if (doc == NULL) {
		free(path);
		skip(); /* tests/data used from elsewhere: no docs beside it */
	}
	model = section(doc, "Model options");
	assert_non_null(model);
	for (c = 0; c < NCOMMANDS; c++) {
		const char *t = commands[c].name;
		char *sec = section(doc, strcmp(t, "help") == 0 || strcmp(t, "completion") == 0
						 ? "help, completion" : t);
		const struct opt *o;

		if (sec == NULL)
			fail_msg("docs/CLI.md has no section '## %s'", t);
		tu_result h = tu_run("help", t, NULL);

		for (o = commands[c].opts; o->name != NULL; o++) {
			char *e, *hd, *dd;

			if (strcmp(o->name, "help") == 0) {
				if (strstr(sec, "`--help`") == NULL)
					fail_msg("docs/CLI.md: %s lacks --help", t);
				continue;
			}
			e = entry(h.out, o->name);
			assert_non_null(e);
			hd = help_default(e);
			dd = doc_default(sec, o->name);
			if (dd == NULL)
				dd = doc_default(model, o->name);
			if (dd == NULL)
				fail_msg("docs/CLI.md does not describe %s --%s", t, o->name);
			if (strcmp(hd, dd) != 0)
				fail_msg("%s --%s: the help's default '%s', docs/CLI.md's '%s'", t,
					 o->name, hd, dd);
			free(e);
			free(hd);
			free(dd);
		}
		tu_result_free(&h);
		free(sec);
	}
	/* the exit-code table */
	assert_non_null(strstr(doc, "| 127 |"));
	assert_non_null(strstr(doc, "| 128+N |"));
	free(model);
	free(doc);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_equals_form),
		cmocka_unit_test(test_double_dash),
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_bad_options),
		cmocka_unit_test(test_specific_messages),
		cmocka_unit_test(test_exit_codes),
		cmocka_unit_test(test_unit_hint),
		cmocka_unit_test(test_completion),
		cmocka_unit_test(test_docs),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
