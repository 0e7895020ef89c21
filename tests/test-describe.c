/*
 * Pipeline descriptions (docs/PIPELINES.md): every error of the reader is one line
 * "FILE:LINE:COL: what is wrong" (checked word for word through sm_desc_parse), every error of the
 * replay is exit 2 with one line and nothing written (through `snapmem estimate --pipeline`), the
 * option switches and --set are checked against the description, the worked example of the docs
 * (a dark-matter projection) gives the figures worked out by hand, a per-halo loop gives every
 * halo its own peak, and the radial-profile description declares the 28 variants tradeoff has
 * always compared.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hdf5.h>
#include <jansson.h>

#include "snapmem/describe.h"
#include "snapmem/estimator.h"
#include "snapmem/snapshot.h"
#include "util.h"

struct bad {
	const char *what, *yaml, *msg;
};

/* Found when the file is read: the whole message, word for word. */
static const struct bad read_errors[] = {
	{"not YAML", "pipeline: x\nstages: [a: b: c\n",
	 "x.yaml:2:14: not YAML: did not find expected ',' or ']' while parsing a flow sequence"},
	{"anchor", "pipeline: &p x\nstages: [{id: a}]\n",
	 "x.yaml:1:11: anchor '&p': anchors and aliases are not allowed"},
	{"alias", "pipeline: x\nnote: *t\nstages: [{id: a}]\n",
	 "x.yaml:2:7: an alias: anchors and aliases are not allowed"},
	{"tag", "pipeline: !!str x\nstages: [{id: a}]\n",
	 "x.yaml:1:11: tag 'tag:yaml.org,2002:str': tags are not allowed"},
	{"two documents", "pipeline: x\nstages: [{id: a}]\n---\npipeline: y\n",
	 "x.yaml:3:1: more than one YAML document"},
	{"empty", "", "x.yaml:1:1: empty description: a mapping with pipeline: and stages: is "
	 "expected"},
	{"unknown key", "pipeline: x\nstagse: [{id: a}]\n",
	 "x.yaml:2:1: unknown key 'stagse' in the description (did you mean 'stages'?)"},
	{"no stages", "pipeline: x\n", "x.yaml:1:1: no stages:"},
	{"bad allocator", "pipeline: x\nallocator: glibc\nstages: [{id: a}]\n",
	 "x.yaml:2:12: allocator 'glibc': jemalloc (snapmem run, programs linked with libsnapmem) or "
	 "profile (a program under snapmem profile)"},
	{"bad id", "pipeline: X_1\nstages: [{id: a}]\n",
	 "x.yaml:1:11: pipeline id 'X_1': only lower-case letters, digits and '-'"},
	{"wrong kind", "pipeline: x\nstages:\n  - id: a\n    arrays: nothing\n",
	 "x.yaml:4:13: arrays must be a sequence, not a scalar"},
	{"unknown quantity", "pipeline: x\nstages:\n  - id: a\n    arrays:\n"
	 "      - {name: q, dtype: float32, count: gass_cells}\n",
	 "x.yaml:5:42: unknown quantity 'gass_cells' (did you mean 'gas_cells'?)"},
	{"unknown function", "pipeline: x\nstages:\n  - id: a\n    arrays:\n"
	 "      - {name: q, dtype: float32, count: mn(1; 2)}\n",
	 "x.yaml:5:42: unknown function 'mn' (did you mean 'min'?)"},
	{"cycle", "pipeline: x\nlet:\n  a: b + 1\n  b: 2 * a\nstages: [{id: s}]\n",
	 "x.yaml:3:3: 'a' is defined in terms of itself: a -> b -> a"},
	{"self cycle", "pipeline: x\nlet:\n  n: n + 1\nstages: [{id: s}]\n",
	 "x.yaml:3:3: 'n' is defined in terms of itself: n -> n"},
	{"let shadows", "pipeline: x\nlet:\n  halos: 3\nstages: [{id: s}]\n",
	 "x.yaml:3:3: 'halos' is already the name of a quantity"},
	{"stage twice", "pipeline: x\nstages:\n  - id: load\n  - id: deposit\n  - id: load\n",
	 "x.yaml:5:9: stage id 'load' used twice (first at 3:9)"},
	{"freed before allocated", "pipeline: x\nstages:\n  - id: load\n  - id: deposit\n"
	 "    arrays:\n      - {name: q, dtype: uint8, count: 1, free: load}\n",
	 "x.yaml:6:49: 'q' freed in stage 'load', before its allocation in stage 'deposit'"},
	{"free unknown stage", "pipeline: x\nstages:\n  - id: load\n    arrays:\n"
	 "      - {name: q, dtype: uint8, count: 1, free: lod}\n",
	 "x.yaml:5:49: free: unknown stage 'lod' (did you mean 'load'?)"},
	{"after not later", "pipeline: x\nstages:\n  - id: deposit\n    arrays:\n"
	 "      - {name: flat, dtype: int64, count: 1, free: end}\n"
	 "      - {name: ix, dtype: int64, count: 1, free: {after: flat}}\n",
	 "x.yaml:6:58: free: after 'flat': no array of that name is allocated later in stage "
	 "'deposit'"},
	{"after itself", "pipeline: x\nstages:\n  - id: deposit\n    arrays:\n"
	 "      - {name: ix, dtype: int64, count: 1, free: {after: ix}}\n",
	 "x.yaml:5:58: 'ix' freed after itself: after: names an array allocated later in the same "
	 "stage"},
	{"freed twice", "pipeline: x\nstages:\n  - id: s\n    arrays:\n"
	 "      - {name: q, dtype: uint8, count: 1, free: end, free: end}\n",
	 "x.yaml:5:54: duplicate key 'free' (first at 5:43)"},
	{"per-halo outlives", "pipeline: x\nstages:\n  - id: select\n    per_halo: true\n"
	 "    arrays:\n      - {name: radius, dtype: float32, count: sphere}\n  - id: write\n",
	 "x.yaml:6:16: per-halo array 'radius' must be freed within the per-halo loop (stages "
	 "'select' to 'select')"},
	{"unknown option value", "pipeline: x\noptions:\n"
	 "  strategy: {values: [serial, distributed], default: serial}\n"
	 "stages:\n  - id: s\n    when: strategy == distrbuted\n",
	 "x.yaml:6:23: unknown value 'distrbuted' of option 'strategy' (did you mean "
	 "'distributed'?)"},
	{"bad default", "pipeline: x\noptions:\n"
	 "  positions: {values: [float32, float64], default: float61}\nstages: [{id: s}]\n",
	 "x.yaml:3:52: default 'float61' is not one of the values of 'positions' (did you mean "
	 "'float64'?)"},
	{"option not a dtype", "pipeline: x\noptions:\n"
	 "  method: {values: [whole, chunked], default: whole}\nstages:\n  - id: s\n    arrays:\n"
	 "      - {name: q, dtype: method, count: 1}\n",
	 "x.yaml:7:26: dtype from option 'method', whose value 'whole' is not a dtype"},
	{"numeric default", "pipeline: x\noptions:\n  block: {default: lots}\nstages: [{id: s}]\n",
	 "x.yaml:3:20: default 'lots' of numeric option 'block' is not an integer"},
	{"syntax", "pipeline: x\nstages:\n  - id: s\n    arrays:\n"
	 "      - {name: q, dtype: uint8, count: (1 + 2))}\n",
	 "x.yaml:5:47: expression: unexpected ')'"},
	{"missing paren", "pipeline: x\nstages:\n  - id: s\n    when: \"min(1, 2\"\n",
	 "x.yaml:4:20: expression: missing ')'"},
	{"chained comparison", "pipeline: x\nstages:\n  - id: s\n    when: 1 < 2 < 3\n",
	 "x.yaml:4:17: expression: comparisons do not chain: use &&"},
	{"integer too large", "pipeline: x\nstages:\n  - id: s\n    arrays:\n"
	 "      - {name: q, dtype: uint8, count: 99999999999999999999}\n",
	 "x.yaml:5:40: expression: integer '99999999999999999999' does not fit in 64 bits"},
	{"arguments", "pipeline: x\nstages:\n  - id: s\n    when: floor(1, 2) > 0\n",
	 "x.yaml:4:11: floor() takes 1 argument, not 2"},
	{"per_halo and all_halos", "pipeline: x\nstages:\n  - id: s\n    per_halo: true\n"
	 "    all_halos: true\n",
	 "x.yaml:5:16: a stage is per_halo or all_halos, not both"},
	{"documented unknown stage", "pipeline: x\nstages: [{id: load}]\ndocumented:\n"
	 "  - {stage: lod, what: w, value: 1G, source: s}\n",
	 "x.yaml:4:13: documented: unknown stage 'lod' (did you mean 'load'?)"},
	{"documented unknown array", "pipeline: x\nstages:\n  - id: load\n"
	 "    arrays: [{name: grid, dtype: uint8, count: 1}]\ndocumented:\n"
	 "  - {stage: load, what: w, value: 1G, source: s, arrays: [gird]}\n",
	 "x.yaml:6:59: documented: stage 'load' allocates no array 'gird' (did you mean 'grid'?)"},
	{"documented no arrays", "pipeline: x\nstages: [{id: load}]\ndocumented:\n"
	 "  - {stage: load, what: w, value: 1G, source: s, arrays: [a]}\n",
	 "x.yaml:4:58: documented arrays: stage 'load' allocates no array"},
	{"documented value without unit", "pipeline: x\nstages: [{id: load}]\ndocumented:\n"
	 "  - {stage: load, what: w, value: 175.1, source: s}\n",
	 "x.yaml:4:35: documented value: '175.1' has no unit: 175.1 what? e.g. 175.1G"},
	{"documented without source", "pipeline: x\nstages: [{id: load}]\ndocumented:\n"
	 "  - {stage: load, what: w, value: 1G}\n",
	 "x.yaml:4:5: a documented figure needs stage:, what:, value: and source:"},
	{"pages value", "pipeline: x\nstages:\n  - id: s\n    arrays:\n"
	 "      - {name: q, dtype: uint8, count: 10, pages: large}\n",
	 "x.yaml:5:51: pages: 'large': 4k or huge"},
	{"pages not a scalar", "pipeline: x\nstages:\n  - id: s\n    arrays:\n"
	 "      - {name: q, dtype: uint8, count: 10, pages: [huge]}\n",
	 "x.yaml:5:51: pages must be a scalar, not a sequence"},
	{"documented unknown quantity", "pipeline: x\nstages: [{id: load}]\ndocumented:\n"
	 "  - {stage: load, what: w, value: 1G, source: s, when: gass_cells > 1}\n",
	 "x.yaml:4:56: unknown quantity 'gass_cells' (did you mean 'gas_cells'?)"},
	{NULL, NULL, NULL},
};

static void test_read_errors(void **state)
{
	const struct bad *b;

	(void)state;
	for (b = read_errors; b->what != NULL; b++) {
		sm_pipeline_desc *d = NULL;
		sm_error err = {0};
		int rc = sm_desc_parse("x.yaml", b->yaml, strlen(b->yaml), &d, &err);

		if (rc != SM_EFORMAT || d != NULL || strcmp(err.msg, b->msg) != 0)
			tu_soft_fail(b->what, "rc %d, message '%s', want '%s'", rc, err.msg, b->msg);
	}
	tu_soft_done("read errors");
}

static char *write_desc(const char *dir, const char *name, const char *yaml);

/* The same through the command: exit 2, the line on stderr naming the file given, nothing on
 * stdout, -o not written and an existing output file untouched. */
static void test_read_errors_cli(void **state)
{
	char *dir = tu_tmpdir(), *out = tu_path(dir, "out.json"), *kept = tu_path(dir, "kept.json");
	const struct bad *b;
	FILE *f;

	(void)state;
	f = fopen(kept, "w");
	assert_non_null(f);
	fputs("an earlier estimate\n", f);
	fclose(f);
	for (b = read_errors; b->what != NULL; b++) {
		char *p = write_desc(dir, "x.yaml", b->yaml);
		char *want = tu_fmt("snapmem: %s%s\n", p, b->msg + strlen("x.yaml"));
		tu_result r = tu_run("estimate", "--pipeline", p, "-o", out, NULL);
		tu_result t = tu_run("tradeoff", "--pipeline", p, "-o", kept, NULL);
		char *k = tu_read_file(kept, NULL);

		if (r.status != 2 || strcmp(r.err, want) != 0 || r.out[0] != '\0' || tu_exists(out))
			tu_soft_fail(b->what, "estimate: status %d, stderr '%s', want '%s'", r.status,
				     r.err, want);
		if (t.status != 2 || strcmp(t.err, want) != 0 || k == NULL ||
		    strcmp(k, "an earlier estimate\n") != 0)
			tu_soft_fail(b->what, "tradeoff: status %d, stderr '%s', output '%s'", t.status,
				     t.err, k != NULL ? k : "(gone)");
		tu_result_free(&r);
		tu_result_free(&t);
		free(k);
		free(want);
		free(p);
	}
	tu_soft_done("read errors through the command");
	free(kept);
	free(out);
	tu_rmtree(dir);
	free(dir);
}

/* 70 nested parentheses: the parser's depth is bounded, not the stack. */
static void test_deep_expression(void **state)
{
	char yaml[400], x[200];
	sm_pipeline_desc *d = NULL;
	sm_error err = {0};
	int i, n = 0;

	(void)state;
	for (i = 0; i < 70; i++)
		x[n++] = '(';
	x[n++] = '1';
	for (i = 0; i < 70; i++)
		x[n++] = ')';
	x[n] = '\0';
	snprintf(yaml, sizeof(yaml), "pipeline: x\nstages:\n  - id: s\n    when: \"%s\"\n", x);
	assert_int_equal(sm_desc_parse("x.yaml", yaml, strlen(yaml), &d, &err), SM_EFORMAT);
	assert_string_equal(err.msg, "x.yaml:4:76: expression: nested deeper than 64 levels");
	/* a NUL byte and more than 1 MiB */
	assert_int_equal(sm_desc_parse("x.yaml", "pipeline: x\0", 12, &d, &err), SM_EFORMAT);
	assert_string_equal(err.msg, "x.yaml: a NUL byte: not a text file");
	assert_int_equal(sm_desc_parse("x.yaml", yaml, (1u << 20) + 1, &d, &err), SM_EFORMAT);
	assert_null(d);
}

/* Found when replayed: `snapmem estimate --pipeline FILE -o OUT` exits 2, one line, no OUT. */
static const struct bad replay_errors[] = {
	{"overflow", "pipeline: x\nstages:\n  - id: s\n    arrays:\n"
	 "      - {name: q, dtype: uint8, count: 18446744073709551615 * 2}\n",
	 "snapmem: 'TNG300-1 snapshot 99': q: F:5:61: overflow: 18446744073709551615 * 2 does not "
	 "fit in 64 bits\n"},
	{"byte count", "pipeline: x\nstages:\n  - id: s\n    arrays:\n"
	 "      - {name: q, dtype: float64, count: 18446744073709551615}\n",
	 "snapmem: 'TNG300-1 snapshot 99': F:5:42: q of 18446744073709551615 float64 elements: "
	 "byte count does not fit in 64 bits\n"},
	{"not an integer", "pipeline: x\nstages:\n  - id: s\n    arrays:\n"
	 "      - {name: q, dtype: uint8, count: gas_cells / 3.0}\n",
	 "snapmem: F:5:50: count 4818240736.666667 is not an integer (use floor() or ceil())\n"},
	{"division by zero", "pipeline: x\nstages:\n  - id: s\n    arrays:\n"
	 "      - {name: q, dtype: uint8, count: gas_cells / npart_tracers}\n",
	 "snapmem: F:5:50: division by zero (14454722210 / 0)\n"},
	{"negative", "pipeline: x\nstages:\n  - id: s\n    arrays:\n"
	 "      - {name: q, dtype: uint8, count: halos - 1000}\n",
	 "snapmem: 'TNG300-1 snapshot 99': q: F:5:46: negative: 280 - 1000 is below 0\n"},
	{"allocated while live", "pipeline: x\nstages:\n  - id: load\n    arrays:\n"
	 "      - {name: q, dtype: uint8, count: 10}\n  - id: again\n    arrays:\n"
	 "      - {name: q, dtype: uint8, count: 10}\n",
	 "snapmem: F:8:16: 'q' allocated while already live (allocated in stage 'load' at 5:16)\n"},
	{"freed in a stage that does not run", "pipeline: x\nstages:\n  - id: load\n    arrays:\n"
	 "      - {name: q, dtype: uint8, count: 10, free: later}\n  - id: later\n"
	 "    when: halos > 1000000\n",
	 "snapmem: F:5:16: 'q' is to be freed in stage 'later', which does not run in this variant "
	 "(its when: is false)\n"},
	{"after a skipped array", "pipeline: x\nstages:\n  - id: s\n    arrays:\n"
	 "      - {name: ix, dtype: int64, count: 10, free: {after: flat}}\n"
	 "      - {name: flat, dtype: int64, count: 10, when: halos > 1000000}\n",
	 "snapmem: F:5:16: 'ix' is to be freed after an array that is not allocated in this variant "
	 "(its when: is false)\n"},
	{"a word as a number", "pipeline: x\noptions:\n"
	 "  method: {values: [whole, chunked], default: whole}\nstages:\n  - id: s\n    arrays:\n"
	 "      - {name: q, dtype: uint8, count: method + 1}\n",
	 "snapmem: F:7:40: expected a number, got an option value\n"},
	{"sphere outside the loop", "pipeline: x\nstages:\n  - id: s\n    arrays:\n"
	 "      - {name: q, dtype: uint8, count: sphere}\n",
	 "snapmem: F:5:40: 'sphere' is a halo's sphere: only in per_halo stages (sphere_max is the "
	 "largest)\n"},
	{"unknown dtype", "pipeline: x\nstages:\n  - id: s\n    arrays:\n"
	 "      - {name: q, dtype: \"'float128'\", count: 1}\n",
	 "snapmem: F:5:27: unknown dtype 'float128'\n"},
	{"loop not consecutive", "pipeline: x\nstages:\n  - id: a\n    per_halo: true\n"
	 "    arrays:\n      - {name: q, dtype: uint8, count: sphere, free: c}\n  - id: b\n"
	 "  - id: c\n    per_halo: halos > 0\n",
	 "snapmem: F:8:9: per_halo stage 'c' is not next to the other per_halo stages (one loop: "
	 "consecutive stages)\n"},
	{"touched beyond count", "pipeline: x\nstages:\n  - id: s\n    arrays:\n"
	 "      - {name: q, dtype: uint8, count: 10, touched: 11}\n",
	 "snapmem: F:5:16: 'q' touches more elements than it has\n"},
	{NULL, NULL, NULL},
};

static void expect_bad(tu_result r, const char *want);

static char *write_desc(const char *dir, const char *name, const char *yaml)
{
	char *p = tu_path(dir, name);
	FILE *f = fopen(p, "w");

	assert_non_null(f);
	assert_int_equal(fputs(yaml, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	return p;
}

static void test_replay_errors(void **state)
{
	char *dir = tu_tmpdir(), *out = tu_path(dir, "out.json");
	const struct bad *b;

	(void)state;
	for (b = replay_errors; b->what != NULL; b++) {
		char *p = write_desc(dir, "d.yaml", b->yaml), *want;
		tu_result r = tu_run("estimate", "--pipeline", p, "--format", "json", "-o", out, NULL);
		char *f = tu_fmt("%s:", p);

		want = tu_fmt("%s", b->msg);
		{
			/* F: stands for the file */
			char *hit = strstr(want, "F:");

			if (hit != NULL) {
				char *w2 = tu_fmt("%.*s%s%s", (int)(hit - want), want, f, hit + 2);

				free(want);
				want = w2;
			}
		}
		if (r.status != 2 || strcmp(r.err, want) != 0 || r.out[0] != '\0' || tu_exists(out))
			tu_soft_fail(b->what, "status %d, stderr '%s', want '%s'%s", r.status, r.err,
				     want, tu_exists(out) ? ", and the output was written" : "");
		tu_result_free(&r);
		free(want);
		free(f);
		free(p);
	}
	tu_soft_done("replay errors");
	/* definitions that double each other: bounded steps, not 2^30 of them */
	{
		char yaml[4096], *p;
		size_t n = 0;
		int i;
		tu_result r;

		n += (size_t)snprintf(yaml + n, sizeof(yaml) - n, "pipeline: x\nlet:\n  a0: 1\n");
		for (i = 0; i < 30; i++)
			n += (size_t)snprintf(yaml + n, sizeof(yaml) - n, "  a%d: a%d + a%d\n", i + 1, i,
					      i);
		snprintf(yaml + n, sizeof(yaml) - n, "stages:\n  - id: s\n    arrays:\n"
			 "      - {name: q, dtype: uint8, count: a30 %% 7}\n");
		p = write_desc(dir, "d.yaml", yaml);
		r = tu_run("estimate", "--pipeline", p, NULL);
		expect_bad(r, "steps to evaluate (definitions that use each other many times over)");
		free(p);
	}
	free(out);
	tu_rmtree(dir);
	free(dir);
}

static const char *const small =
	"pipeline: x\noptions:\n  method: {values: [whole, chunked], default: whole}\n"
	"  block: {default: 10, min: 1, max: 100}\nstages:\n  - id: s\n    arrays:\n"
	"      - {name: q, dtype: uint8, count: block}\n";

/* One line on stderr holding want, exit 2, nothing on stdout. */
static void expect_bad(tu_result r, const char *want)
{
	if (r.status != 2 || tu_count_lines(r.err) != 1 || strstr(r.err, want) == NULL ||
	    r.out[0] != '\0')
		fail_msg("want exit 2 and one line with '%s'; got %d, stderr '%s'", want, r.status,
			 r.err);
	tu_result_free(&r);
}

static void test_options(void **state)
{
	char *dir = tu_tmpdir(), *p = write_desc(dir, "small.yaml", small);
	char *missing = tu_path(dir, "missing.yaml");
	tu_result r;

	(void)state;
	expect_bad(tu_run("estimate", "--pipeline", p, "--select", "mask", NULL),
		   "--select: pipeline 'x' (");
	expect_bad(tu_run("estimate", "--pipeline", p, "--positions", "float64", NULL),
		   "declares no option 'positions'");
	expect_bad(tu_run("estimate", "--pipeline", p, "--mpi", NULL),
		   "--mpi: pipeline 'x' (");
	/* the strategy switch named as typed: --ranks R alone is not blamed on --mpi */
	expect_bad(tu_run("tradeoff", "--pipeline", p, "--ranks", "3", NULL),
		   "snapmem: --ranks 3: pipeline 'x' (");
	expect_bad(tu_run("estimate", "--pipeline", p, "--ranks", "4", NULL),
		   "declares no option 'strategy': it has no distributed variant (--ranks R > 1 is "
		   "the distributed strategy)");
	expect_bad(tu_run("estimate", "--pipeline", p, "--mpi", "--ranks", "2", NULL),
		   "snapmem: --mpi --ranks 2: pipeline 'x' (");
	r = tu_run("estimate", "--pipeline", p, "--ranks", "1", NULL);  /* one process: no strategy */
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	expect_bad(tu_run("estimate", "--pipeline", p, "--stream-block", "5", NULL),
		   "declares no option 'stream_block'");
	expect_bad(tu_run("estimate", "--pipeline", p, "--set", "foo=1", NULL),
		   "--set 'foo=1': pipeline 'x' declares no option 'foo'");
	expect_bad(tu_run("estimate", "--pipeline", p, "--set", "method=half", NULL),
		   "--set 'method=half': option 'method' is one of whole, chunked");
	expect_bad(tu_run("estimate", "--pipeline", p, "--set", "block=0", NULL),
		   "--set 'block=0': option 'block' takes an integer from 1 to 100");
	expect_bad(tu_run("estimate", "--pipeline", p, "--set", "block", NULL),
		   "--set 'block': NAME=VALUE expected");
	expect_bad(tu_run("estimate", "--set", "method=whole", NULL),
		   "--set 'method=whole': pipeline 'radial-profiles' declares no option 'method'");
	expect_bad(tu_run("estimate", "--pipeline", missing, NULL), "cannot open");
	expect_bad(tu_run("estimate", "--pipeline", dir, NULL), "not a regular file");
	/* the last --set of a name wins; the value is in the pipeline object */
	r = tu_run("estimate", "--pipeline", p, "--set", "block=7", "--set", "block=42",
		   "--format", "json", NULL);
	assert_int_equal(r.status, 0);
	{
		json_t *j = json_loads(r.out, 0, NULL), *po;

		assert_non_null(j);
		po = json_object_get(j, "pipeline");
		assert_string_equal(json_string_value(json_object_get(po, "id")), "x");
		assert_int_equal(json_integer_value(json_object_get(
			json_object_get(po, "options"), "block")), 42);
		assert_int_equal(json_integer_value(json_object_get(
			json_array_get(json_object_get(j, "stages"), 0), "peak_bytes")), 42);
		json_decref(j);
	}
	tu_result_free(&r);
	/* the embedded default accepts its own options by --set */
	r = tu_run("estimate", "--set", "positions=float64", "--format", "json", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "\"positions\": \"float64\""));
	assert_null(strstr(r.out, "\"pipeline\""));
	tu_result_free(&r);
	free(missing);
	free(p);
	tu_rmtree(dir);
	free(dir);
}

static json_t *stage(json_t *doc, const char *id)
{
	json_t *st = json_object_get(doc, "stages"), *s;
	size_t i;

	json_array_foreach(st, i, s)
		if (strcmp(json_string_value(json_object_get(s, "id")), id) == 0)
			return s;
	fail_msg("no stage '%s'", id);
	return NULL;
}

static json_int_t ival(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	if (!json_is_integer(v))
		fail_msg("'%s' is not an integer", k);
	return json_integer_value(v);
}

/* The worked example of docs/PIPELINES.md, on the embedded TNG300-1 header: 15,625,000,000 dark
 * matter particles, 600 files. Requested bytes (jemalloc's size classes aside). */
/* Nsubgroups_Total of a catalogue chunk read with HDF5 here, independently of the readers. */
static long long h5_nsub(const char *path, const char *name)
{
	hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), a;
	long long v = -1;

	assert_true(f >= 0);
	a = H5Aopen_by_name(f, "Header", name, H5P_DEFAULT, H5P_DEFAULT);
	if (a >= 0) {
		assert_true(H5Aread(a, H5T_NATIVE_LLONG, &v) >= 0);
		H5Aclose(a);
	}
	H5Fclose(f);
	return v;
}

/* Replaces the subhalo count of a mock's catalogue chunk 0 by `name` = v (v < 0: no count). */
static void h5_set_nsub(const char *path, const char *name, long long v)
{
	hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT), g, sp, a;

	assert_true(f >= 0);
	g = H5Gopen2(f, "Header", H5P_DEFAULT);
	assert_true(g >= 0);
	if (H5Aexists(g, "Nsubgroups_Total") > 0)
		assert_true(H5Adelete(g, "Nsubgroups_Total") >= 0);
	if (H5Aexists(g, "Nsubhalos_Total") > 0)
		assert_true(H5Adelete(g, "Nsubhalos_Total") >= 0);
	if (v >= 0) {
		sp = H5Screate(H5S_SCALAR);
		a = H5Acreate2(g, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
		assert_true(a >= 0);
		assert_true(H5Awrite(a, H5T_NATIVE_LLONG, &v) >= 0);
		H5Aclose(a);
		H5Sclose(sp);
	}
	H5Gclose(g);
	H5Fclose(f);
}

/*
 * The `subhalos` quantity: the catalogue's Nsubgroups_Total (Nsubhalos_Total where a writer calls
 * it so), read by the catalogue reader from the real TNG100-1 chunks and, through a mock whose
 * chunk 0 carries the real chunk's count, replayed by a description; a source without the count
 * (the embedded header, a catalogue without either attribute) is exit 2 naming the place.
 */
static void test_subhalos(void **state)
{
	static const char *const chunks[] = {"fof_subhalo_tab_099.88.hdf5", "fof_subhalo_tab_099.2.hdf5"};
	const char *yaml = "pipeline: x\nstages:\n  - id: s\n    arrays:\n"
			   "      - {name: sub, dtype: int32, count: subhalos}\n";
	char *dir = tu_tmpdir(), *mock = tu_path(dir, "mock"), *d = write_desc(dir, "d.yaml", yaml),
	     *c0 = tu_path(mock, "groups_099/fof_subhalo_tab_099.0.hdf5"), *real;
	long long want = -1, v;
	sm_catalog c;
	sm_error err = {0};
	tu_result r;
	json_t *j;
	size_t i;
	int k;

	(void)state;
	for (i = 0; i < 2; i++) {
		real = tu_real_data(chunks[i]);
		v = h5_nsub(real, "Nsubgroups_Total");
		assert_true(v > 0);
		assert_int_equal(sm_catalog_open_file(&c, real, &err), 0);
		assert_int_equal(c.has_nsubgroups_total, 1);
		assert_int_equal((long long)c.nsubgroups_total, v);
		sm_catalog_release(&c);
		want = v;
		free(real);
	}
	r = tu_run("mock", mock, "--gas", "20000", "--halos", "3", "--files", "2", NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	/* the real count under either name */
	for (k = 0; k < 2; k++) {
		h5_set_nsub(c0, k == 0 ? "Nsubgroups_Total" : "Nsubhalos_Total", want);
		r = tu_run("estimate", "--pipeline", d, "--base-path", mock, "--snap", "99", "--format",
			   "json", NULL);
		assert_int_equal(r.status, 0);
		j = json_loads(r.out, 0, NULL);
		assert_non_null(j);
		assert_int_equal(ival(stage(j, "s"), "peak_bytes"), want * 4);
		json_decref(j);
		tu_result_free(&r);
	}
	/* no count at all, then the embedded header: the quantity's place and what to give */
	h5_set_nsub(c0, NULL, -1);
	r = tu_run("estimate", "--pipeline", d, "--base-path", mock, "--snap", "99", NULL);
	expect_bad(r, "d.yaml:5:42: 'subhalos': ");
	r = tu_run("estimate", "--pipeline", d, NULL);
	expect_bad(r, "'subhalos': TNG300-1 snapshot 99 has no subhalo count");
	free(c0);
	free(d);
	free(mock);
	tu_rmtree(dir);
	free(dir);
}

/*
 * A description that reads no halo (examples/dm-projection): estimate prints no halo, sphere or
 * group line and none of the halo model's assumptions, but the dark-matter particles it reads; a
 * single snapshot file (no catalogue) needs no --halos for it, while a description reading the
 * halos, or looping over them, is exit 2 naming its place. The radial-profile default keeps its
 * halo lines (and its early error without a catalogue).
 */
static void test_what_applies(void **state)
{
	const char *hy = "pipeline: y\nstages:\n  - id: s\n    arrays:\n"
			 "      - {name: h, dtype: int32, count: 3 * halos}\n";
	const char *ly = "pipeline: z\nstages:\n  - id: a\n  - id: loop\n    per_halo: true\n";
	char *dir = tu_tmpdir(), *mock = tu_path(dir, "mock"), *hd = write_desc(dir, "h.yaml", hy),
	     *ld = write_desc(dir, "l.yaml", ly), *snap = tu_path(mock, "snapdir_099/snap_099.0.hdf5"),
	     *dm = tu_real_data("pipelines/dm-projection.yaml");
	tu_result r;

	(void)state;
	r = tu_run("estimate", "--pipeline", dm, NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, ", dark-matter particles 15,625,000,000 in 600 files"));
	assert_null(strstr(r.out, "  halos "));
	assert_null(strstr(r.out, "sphere"));
	assert_null(strstr(r.out, "NFW"));
	assert_null(strstr(r.out, "Ngroups_Total"));
	assert_non_null(strstr(r.out, "the mass MassTable[1]")); /* its own assumption stays */
	tu_result_free(&r);
	r = tu_run("estimate", "--pipeline", dm, "--format", "markdown", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "\nAssumptions:\n"));
	assert_null(strstr(r.out, "sphere-cells model"));
	tu_result_free(&r);
	/* the default still says it all */
	r = tu_run("estimate", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "  halos 280 of 17,625,892 groups"));
	assert_non_null(strstr(r.out, "; largest sphere (2 R200) "));
	assert_null(strstr(r.out, "dark-matter particles"));
	tu_result_free(&r);

	r = tu_run("mock", mock, "--gas", "20000", "--halos", "3", "--files", "2", NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	r = tu_run("estimate", "--pipeline", dm, "--snapshot", snap, NULL);
	assert_int_equal(r.status, 0);
	assert_null(strstr(r.out, "halos"));
	tu_result_free(&r);
	r = tu_run("estimate", "--pipeline", hd, "--snapshot", snap, NULL);
	expect_bad(r, "h.yaml:5:44: 'halos': '");
	r = tu_run("estimate", "--pipeline", ld, "--snapshot", snap, NULL);
	expect_bad(r, "l.yaml:4:9: stage 'loop' works on the halos: '");
	r = tu_run("estimate", "--snapshot", snap, NULL);
	expect_bad(r, "a single snapshot file has no group catalogue: --mass-min needs one");
	/* with --halos N the halos are modelled, and read */
	r = tu_run("estimate", "--pipeline", hd, "--snapshot", snap, "--halos", "2", "--format",
		   "json", NULL);
	assert_int_equal(r.status, 0);
	{
		json_t *j = json_loads(r.out, 0, NULL);

		assert_non_null(j);
		assert_int_equal(ival(stage(j, "s"), "peak_bytes"), 3 * 2 * 4);
		json_decref(j);
	}
	tu_result_free(&r);
	free(dm);
	free(snap);
	free(ld);
	free(hd);
	free(mock);
	tu_rmtree(dir);
	free(dir);
}

static void test_dm_projection(void **state)
{
	char *p = tu_real_data("pipelines/dm-projection.yaml");
	const json_int_t density = INT64_C(4096) * 4096 * 8, coords = INT64_C(15625000000) * 3 * 8;
	const json_int_t idx = INT64_C(15625000000) * 8, chunk = INT64_C(26041667); /* ceil(N/600) */
	tu_result r;
	json_t *j, *s, *a;

	(void)state;
	r = tu_run("estimate", "--pipeline", p, "--format", "json", NULL);
	assert_int_equal(r.status, 0);
	j = json_loads(r.out, 0, NULL);
	assert_non_null(j);
	s = stage(j, "read_positions");
	assert_int_equal(ival(s, "peak_bytes"), density + coords);
	a = json_array_get(json_object_get(s, "arrays"), 0);
	assert_string_equal(json_string_value(json_object_get(a, "freed_in")), "deposit");
	assert_string_equal(json_string_value(json_object_get(a, "dtype")), "float64");
	/* ix and iy are freed only once flat exists: all three at the peak */
	s = stage(j, "deposit");
	assert_int_equal(ival(s, "peak_bytes"), density + coords + 3 * idx);
	assert_int_equal(ival(s, "live_after_bytes"), density);
	assert_string_equal(json_string_value(json_object_get(j, "peak_stage")), "deposit");
	assert_true(json_is_null(json_object_get(json_array_get(json_object_get(
		stage(j, "allocate_grid"), "arrays"), 0), "freed_in")));
	assert_int_equal(ival(j, "baseline_resident_bytes"), 31457280);
	assert_int_equal(json_array_size(json_object_get(j, "documented")), 0);
	json_decref(j);
	tu_result_free(&r);

	/* chunked, float32: one chunk's particles */
	r = tu_run("estimate", "--pipeline", p, "--set", "method=chunked", "--positions", "float32",
		   "--format", "json", NULL);
	assert_int_equal(r.status, 0);
	j = json_loads(r.out, 0, NULL);
	assert_non_null(j);
	assert_int_equal(ival(stage(j, "deposit"), "peak_bytes"),
			 density + chunk * 3 * 4 + 3 * chunk * 8);
	assert_non_null(strstr(r.out, "an even spread"));
	json_decref(j);
	tu_result_free(&r);

	/* tradeoff: method x positions at the configured pixels (4 variants in JSON) */
	r = tu_run("tradeoff", "--pipeline", p, "--format", "json", NULL);
	assert_int_equal(r.status, 0);
	j = json_loads(r.out, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_array_size(json_object_get(j, "variants")), 4);
	json_decref(j);
	tu_result_free(&r);
	/* the verdict's choices sweep pixels too: 2 x 2 x 3 (4096 among them); the chunked ones fit
	 * but for 16384 pixels (2 GiB of density alone) */
	r = tu_run("tradeoff", "--pipeline", p, "--node-mem", "2G", "--format", "json", NULL);
	assert_int_equal(r.status, 1);
	j = json_loads(r.out, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_array_size(json_object_get(json_object_get(j, "verdict"), "fitting")),
			 4);
	json_decref(j);
	tu_result_free(&r);
	/* Slurm: the description's program, not snapmem run */
	r = tu_run("estimate", "--pipeline", p, "--set", "method=chunked", "--format", "slurm",
		   "--node-mem", "4G", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "#SBATCH --mem="));
	assert_non_null(strstr(r.out, "not snapmem run; its estimate: snapmem estimate --pipeline "));
	assert_null(strstr(r.out, "\nsnapmem run"));
	tu_result_free(&r);
	r = tu_run("tradeoff", "--pipeline", p, NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "chunked/float32/4096"));
	assert_non_null(strstr(r.out, "pipeline 'dm-projection': method whole, positions float64, "
				      "pixels 4096"));
	/* the description's wording: its variants by their labels in both tables, and the
	 * precision of float32 positions since it declares positions */
	assert_non_null(strstr(r.out, "variants: the 4 combinations of the options pipeline "
				      "'dm-projection' declares"));
	assert_non_null(strstr(r.out, "\n  chunked/float64/4096   "));
	assert_non_null(strstr(r.out, "  stage                  whole/float32/4096   whole/float64/4096 "
				      "chunked/float32/4096 chunked/float64/4096\n"));
	assert_non_null(strstr(r.out, "precision: float32 positions"));
	assert_null(strstr(r.out, "f32/index/mem"));
	tu_result_free(&r);
	/* nothing fits 1 MiB: no distributed run to blame */
	r = tu_run("tradeoff", "--pipeline", p, "--node-mem", "1M", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.out, "no option combination fits: the cheapest, pipeline "
				      "'dm-projection': method chunked"));
	assert_null(strstr(r.out, "distributed"));
	tu_result_free(&r);
	r = tu_run("estimate", "--pipeline", p, "--node-mem", "1M", "--format", "slurm", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.out, "# no option combination fits: no job to request\n"));
	tu_result_free(&r);
	free(p);
	/* the example's one numeric option without a sweep: one variant, named after the
	 * description; no positions option, no precision line */
	p = tu_path(getenv("SNAPMEM_REAL_DATA"), "../../examples/dm-projection/dm-projection.yaml");
	r = tu_run("tradeoff", "--pipeline", p, "--node-mem", "2G", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.out, "variants: one: pipeline 'dm-projection' ("));
	assert_non_null(strstr(r.out, "\n  dm-projection      "));
	assert_non_null(strstr(r.out, "no other combination to try: pipeline 'dm-projection' "
				      "declares no option to vary\n"));
	assert_null(strstr(r.out, "precision"));
	assert_null(strstr(r.out, "distributed"));
	tu_result_free(&r);
	free(p);
}

/* The allocated bytes of one array of a description: the estimate's arrays[0] of stage s. */
/* A figure (`key` of estimate.json's arrays[]) of one array of count uint8, touched: `touched`
 * when >= 0, pages: `pages` and allocator: `allocator` when not NULL. */
static json_int_t array_figure(const char *dir, const char *key, json_int_t count,
			       json_int_t touched, const char *pages, const char *allocator)
{
	char yaml[512], t[64] = "";
	char *p;
	tu_result r;
	json_t *j;
	json_int_t v;

	if (touched >= 0)
		snprintf(t, sizeof(t), ", touched: %lld", (long long)touched);
	snprintf(yaml, sizeof(yaml), "pipeline: x\n%s%s%sstages:\n  - id: s\n    arrays:\n"
		 "      - {name: q, dtype: uint8, count: %lld%s%s%s}\n",
		 allocator ? "allocator: " : "", allocator ? allocator : "", allocator ? "\n" : "",
		 (long long)count, t, pages ? ", pages: " : "", pages ? pages : "");
	p = write_desc(dir, "array.yaml", yaml);
	r = tu_run("estimate", "--pipeline", p, "--format", "json", NULL);
	assert_int_equal(r.status, 0);
	j = json_loads(r.out, 0, NULL);
	assert_non_null(j);
	v = ival(json_array_get(json_object_get(stage(j, "s"), "arrays"), 0), key);
	json_decref(j);
	tu_result_free(&r);
	free(p);
	return v;
}

static json_int_t resident_of(const char *dir, const char *pages, json_int_t count,
			      json_int_t touched, const char *allocator)
{
	return array_figure(dir, "resident_bytes", count, touched, pages, allocator);
}

/* pages: huge (docs/MODEL.md "The four peaks", sm_model_huge_extent): from 2 MiB touched, a tail
 * of 1 MiB or more beyond the last whole 2 MiB is resident to the next 2 MiB when the size class
 * reaches it; else 4 KiB pages as without it. */
static void test_huge_pages(void **state)
{
	char *dir = tu_tmpdir();

	(void)state;
	/* 4,000,000 bytes: class 4 MiB, tail 1.81 MiB */
	assert_int_equal(resident_of(dir, NULL, 4000000, -1, NULL), 4001792);
	assert_int_equal(resident_of(dir, "4k", 4000000, -1, NULL), 4001792);
	if (!tu_sanitized()) {
		assert_int_equal(resident_of(dir, "huge", 4000000, -1, NULL), 4194304);
		/* touched 3,500,000 of them: the tail 1.34 MiB, within the class */
		assert_int_equal(resident_of(dir, "huge", 4000000, 3500000, NULL), 4194304);
	}
	/* a tail of 0.15 MiB (40,000,000 bytes), below 2 MiB, a class that ends first (3.5 MiB),
	 * and glibc's chunks (allocator: profile) keep 4 KiB pages */
	assert_int_equal(resident_of(dir, "huge", 40000000, -1, NULL), 40001536);
	assert_int_equal(resident_of(dir, "huge", 1500000, -1, NULL), 1503232);
	assert_int_equal(resident_of(dir, "huge", 3670016, -1, NULL), 3670016);
	assert_int_equal(resident_of(dir, "huge", 4000000, -1, "profile"), 4001792);
	assert_int_equal(resident_of(dir, "huge", 4000000, 1000000, NULL), 1003520);
	tu_rmtree(dir);
	free(dir);
}

static json_int_t allocated_of(const char *dir, const char *allocator, json_int_t count)
{
	return array_figure(dir, "allocated_bytes", count, -1, NULL, allocator);
}

/* allocator: profile models snapmem profile's allocators (docs/PROFILE.md "Large blocks"): below
 * 128 KiB jemalloc's size class as by default, from 128 KiB glibc's mapped chunk (5,000,000 bytes:
 * 5,000,016 with the size field, 5,001,216 to the page, 5,001,200 usable) where jemalloc's class
 * would be 5 MiB; "jemalloc" is the default spelled out. */
static void test_allocator(void **state)
{
	char *dir = tu_tmpdir();

	(void)state;
	assert_int_equal(allocated_of(dir, "profile", 100000), allocated_of(dir, NULL, 100000));
	assert_int_equal(allocated_of(dir, "profile", 5000000), 5001200);
	assert_int_equal(allocated_of(dir, "profile", 131072), 135152);
	assert_int_equal(allocated_of(dir, "jemalloc", 5000000), allocated_of(dir, NULL, 5000000));
	if (!tu_sanitized())
		assert_int_equal(allocated_of(dir, NULL, 5000000), 5242880);
	tu_rmtree(dir);
	free(dir);
}

/* A per-halo loop: every halo's peak is the loop replayed with its own sphere; the loop's stages
 * are reported for the largest. */
static void test_per_halo(void **state)
{
	char *dir = tu_tmpdir(), *p;
	tu_result r;
	json_t *j, *per, *h;
	size_t i;

	(void)state;
	p = write_desc(dir, "loop.yaml",
		       "pipeline: loop\nstages:\n  - id: base\n    arrays:\n"
		       "      - {name: b, dtype: uint8, count: 1000}\n"
		       "  - id: select\n    per_halo: true\n    arrays:\n"
		       "      - {name: r, dtype: float32, count: sphere, free: write}\n"
		       "      - {name: t, dtype: float64, count: sphere, free: {after: u}}\n"
		       "      - {name: u, dtype: uint8, count: 7, free: end}\n"
		       "  - id: write\n    per_halo: true\n");
	r = tu_run("estimate", "--pipeline", p, "--halos", "5", "--format", "json", NULL);
	assert_int_equal(r.status, 0);
	j = json_loads(r.out, 0, NULL);
	assert_non_null(j);
	per = json_object_get(json_object_get(j, "halos"), "per_halo");
	assert_int_equal(json_array_size(per), 5);
	json_array_foreach(per, i, h) {
		json_int_t s = ival(h, "sphere_cells");

		assert_int_equal(ival(h, "peak_bytes"), 1000 + 4 * s + 8 * s + 7);
	}
	h = stage(j, "select");
	assert_true(json_is_true(json_object_get(h, "per_halo")));
	assert_int_equal(ival(h, "instance"), 0);
	assert_int_equal(ival(h, "live_after_bytes"),
			 1000 + 4 * ival(json_array_get(per, 0), "sphere_cells"));
	json_decref(j);
	tu_result_free(&r);
	free(p);
	tu_rmtree(dir);
	free(dir);
}

/* The embedded description: its options, its 22 variants (28 with a block outside the sweep; 10 at
 * the configured block). */
/*
 * documented: the notebook's step-3 measurements (175.1 GB, 336.6 GB; GiB) beside notebook-numpy's
 * estimate at TNG300-1: the first against the three arrays it names, the second against the
 * stage's requested peak, with the source and the explanation; none on another source (when:).
 */
static void test_documented(void **state)
{
	char *nb = tu_path(getenv("SNAPMEM_REAL_DATA"),
			   "../../estimator/pipelines/notebook-numpy.yaml");
	char *dir = tu_tmpdir(), *mock = tu_path(dir, "mock");
	json_t *j, *docs, *st, *a, *row;
	json_int_t arrays = 0;
	size_t i;
	tu_result r;

	(void)state;
	r = tu_run("estimate", "--pipeline", nb, "--format", "json", NULL);
	assert_int_equal(r.status, 0);
	j = json_loads(r.out, 0, NULL);
	assert_non_null(j);
	docs = json_object_get(j, "documented");
	assert_int_equal(json_array_size(docs), 2);
	st = stage(j, "compute_temperature");
	json_array_foreach(json_object_get(st, "arrays"), i, a) {
		const char *n = json_string_value(json_object_get(a, "name"));

		if (strcmp(n, "mu") == 0 || strcmp(n, "temperature_product") == 0 ||
		    strcmp(n, "temperature") == 0)
			arrays += ival(a, "requested_bytes");
	}
	row = json_array_get(docs, 0);
	assert_string_equal(json_string_value(json_object_get(row, "documented_text")), "175.1 GB");
	assert_int_equal(ival(row, "documented_bytes"), (json_int_t)(175.1 * 1073741824.0));
	assert_int_equal(ival(row, "estimated_bytes"), arrays);
	assert_int_equal(ival(row, "difference_bytes"), ival(row, "documented_bytes") - arrays);
	assert_string_equal(json_string_value(json_object_get(row, "model")),
			    "mu + temperature_product + temperature");
	assert_non_null(strstr(json_string_value(json_object_get(row, "source")), "notebook"));
	row = json_array_get(docs, 1);
	assert_string_equal(json_string_value(json_object_get(row, "documented_text")), "336.6 GB");
	assert_int_equal(ival(row, "estimated_bytes"), ival(st, "peak_bytes"));
	json_decref(j);
	tu_result_free(&r);
	/* the table prints them beside the estimate, the difference explained */
	r = tu_run("estimate", "--pipeline", nb, NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "documented figures beside the estimate (pipeline "
				      "'notebook-numpy')"));
	assert_non_null(strstr(r.out, "175.1 GB"));
	assert_non_null(strstr(r.out, "336.6 GB"));
	assert_non_null(strstr(r.out, "one byte per gas cell"));
	assert_non_null(strstr(r.out, "source: the reference notebook, step 3"));
	tu_result_free(&r);
	r = tu_run("estimate", "--pipeline", nb, "--format", "markdown", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "## Documented figures beside the estimate"));
	tu_result_free(&r);
	/* another snapshot: not the notebook's figures */
	r = tu_run("mock", mock, "--gas", "20000", "--halos", "3", "--files", "2", NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	r = tu_run("estimate", "--pipeline", nb, "--base-path", mock, "--snap", "99", NULL);
	assert_int_equal(r.status, 0);
	assert_null(strstr(r.out, "documented figures"));
	tu_result_free(&r);
	free(mock);
	tu_rmtree(dir);
	free(dir);
	free(nb);
}

static void test_default(void **state)
{
	const sm_pipeline_desc *d;
	sm_model_options o, *v = NULL;
	sm_error err = {0};
	size_t n = 0;
	char label[64];

	(void)state;
	assert_int_equal(sm_desc_default(&d, &err), 0);
	assert_string_equal(sm_desc_id(d), "radial-profiles");
	assert_true(sm_desc_is_default(d));
	assert_int_equal(sm_desc_noptions(d), 5);
	assert_true(sm_desc_has_option(d, "stream_block"));
	assert_non_null(strstr(sm_desc_default_text(), "pipeline: radial-profiles"));
	assert_int_equal(sm_desc_check_setting(d, "select=mask", &err), 0);
	assert_int_equal(sm_desc_check_setting(d, "select=grid", &err), SM_EINVAL);
	sm_model_options_init(&o);
	assert_int_equal(sm_est_variants(&o, 1, &v, &n, &err), 0);
	assert_int_equal(n, 28);
	assert_int_equal(v[0].mpi, 0);
	assert_int_equal(v[1].temperature, SM_TEMP_STREAMING);
	assert_int_equal(v[1].stream_block, 65536);
	assert_int_equal(v[4].stream_block, 131072); /* the default, after the sweep's three */
	assert_int_equal(v[26].mpi, 1);
	assert_int_equal(v[26].positions, SM_DTYPE_F64);
	assert_int_equal(v[26].stream_block, 16777216);
	sm_est_variant_label(&v[26], label, sizeof(label));
	assert_string_equal(label, "distributed/float64/index/in-memory/16777216");
	free(v);
	o.stream_block = 4096;
	assert_int_equal(sm_est_variants(&o, 1, &v, &n, &err), 0);
	assert_int_equal(n, 28);
	assert_int_equal(v[4].stream_block, 4096);
	assert_int_equal(v[27].stream_block, 4096);
	free(v);
	assert_int_equal(sm_est_variants(&o, 0, &v, &n, &err), 0);
	assert_int_equal(n, 10);
	assert_int_equal(v[9].stream_block, 4096);
	free(v);
	assert_int_equal(sm_est_baseline_bytes(), 857696);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_errors),
		cmocka_unit_test(test_read_errors_cli),
		cmocka_unit_test(test_deep_expression),
		cmocka_unit_test(test_replay_errors),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_subhalos),
		cmocka_unit_test(test_what_applies),
		cmocka_unit_test(test_dm_projection),
		cmocka_unit_test(test_allocator),
		cmocka_unit_test(test_huge_pages),
		cmocka_unit_test(test_per_halo),
		cmocka_unit_test(test_documented),
		cmocka_unit_test(test_default),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
