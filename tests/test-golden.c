/*
 * The golden outputs: `snapmem estimate` and `snapmem tradeoff` on the embedded TNG300-1 default and
 * on small mocks (serial, mask, float64, streaming, distributed with 1 and 3 ranks, a header-only
 * snapshot of 14,454,722,210 cells), byte for byte against tests/data/golden/, recorded with the
 * binary of the C model before pipeline descriptions replaced it (tests/data/golden/cases says
 * which command made which file and how the mock's directory is normalised). The allocated figures
 * are jemalloc's size classes, so the comparison runs in the jemalloc build only; the sanitizer
 * build (no jemalloc: allocated = requested) skips it. In both builds, every case run with
 * `--pipeline estimator/pipelines/radial-profiles.yaml` gives the same output as without (the file
 * is the compiled-in default).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util.h"

#define MAX_ARGS 48

/* s with every occurrence of from replaced by to (malloc'd). */
static char *replace_all(const char *s, const char *from, const char *to)
{
	size_t nf = strlen(from), nt = strlen(to), n = 0, len;
	const char *p;
	char *out, *q;

	for (p = s; (p = strstr(p, from)) != NULL; p += nf)
		n++;
	len = strlen(s) + n * nt + 1;
	out = malloc(len);
	assert_non_null(out);
	for (q = out, p = s;;) {
		const char *hit = strstr(p, from);

		if (hit == NULL)
			break;
		memcpy(q, p, (size_t)(hit - p));
		q += hit - p;
		memcpy(q, to, nt);
		q += nt;
		p = hit + nf;
	}
	strcpy(q, p);
	return out;
}

/* Trims spaces at both ends, in place. */
static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n'))
		*--e = '\0';
	return s;
}

/* Splits s at spaces into argv (pointers into s); returns the count. */
static int split(char *s, char **argv, int max)
{
	int n = 0;
	char *save = NULL, *t;

	for (t = strtok_r(s, " ", &save); t != NULL; t = strtok_r(NULL, " ", &save)) {
		if (n + 1 >= max)
			fail_msg("golden: too many arguments");
		argv[n++] = t;
	}
	argv[n] = NULL;
	return n;
}

static const char *desc_path;  /* with_desc: the description file, else NULL */

/* Runs one case; returns 1 when its output equals the golden file (desc_path set: equals the
 * output of the same command without --pipeline). */
static int run_case(const char *dir, const char *tmp, int i, char *name, char *mock, char *args)
{
	char *mdir = tu_fmt("%s/m%d", tmp, i), *argv[MAX_ARGS], *margv[MAX_ARGS];
	char *a = replace_all(args, "@MOCK@", mdir), *want_path = tu_path(dir, name);
	char *want = desc_path == NULL ? tu_read_file(want_path, NULL) : NULL, *got = NULL;
	tu_result r = {0};
	int ok = 0, argc;

	if (desc_path != NULL) {
		tu_result w;

		split(a, argv, MAX_ARGS);
		if (strcmp(mock, "-") != 0) {
			char *m = tu_fmt("mock %s %s", mdir, mock);
			tu_result mr;

			split(m, margv, MAX_ARGS);
			mr = tu_runv(margv);
			tu_result_free(&mr);
			free(m);
		}
		w = tu_runv(argv);
		want = replace_all(w.out, mdir, "@MOCK@");
		tu_result_free(&w);
		free(a);
		a = replace_all(args, "@MOCK@", mdir);
		mock = "-";
	}
	if (want == NULL) {
		tu_soft_fail(name, "cannot read '%s'", want_path);
		goto out;
	}
	if (strcmp(mock, "-") != 0) {
		char *m = tu_fmt("mock %s %s", mdir, mock);
		tu_result mr;

		split(m, margv, MAX_ARGS);
		mr = tu_runv(margv);
		if (mr.status != 0)
			tu_soft_fail(name, "mock %s: exit %d: %s", mock, mr.status, mr.err);
		tu_result_free(&mr);
		free(m);
	}
	argc = split(a, argv, MAX_ARGS);
	if (desc_path != NULL) {
		argv[argc++] = "--pipeline";
		argv[argc++] = (char *)desc_path;
		argv[argc] = NULL;
	}
	r = tu_runv(argv);
	if (r.status != 0) {
		tu_soft_fail(name, "exit %d: %s", r.status, r.err);
		goto out;
	}
	got = replace_all(r.out, mdir, "@MOCK@");
	if (strcmp(got, want) != 0) {
		size_t k = 0, line = 1;

		while (got[k] != '\0' && got[k] == want[k]) {
			if (got[k] == '\n')
				line++;
			k++;
		}
		tu_soft_fail(name, "differs from the golden file at line %zu (%zu vs %zu bytes)", line,
			     strlen(got), strlen(want));
		goto out;
	}
	ok = 1;
out:
	tu_result_free(&r);
	free(got);
	free(want);
	free(want_path);
	free(a);
	free(mdir);
	return ok;
}

static void golden_outputs(void **state)
{
	char *cases_path, *dir, *cases, *save = NULL, *line, *tmp;
	int i = 0, n = 0;

	(void)state;
	if (desc_path == NULL && tu_sanitized())
		skip();
	cases_path = tu_real_data("golden/cases");
	dir = tu_real_data("golden");
	cases = tu_read_file(cases_path, NULL);
	tmp = tu_tmpdir();
	assert_non_null(cases);
	for (line = strtok_r(cases, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		char *f1, *f2;

		if (line[0] == '#' || line[0] == '\0')
			continue;
		f1 = strchr(line, '|');
		f2 = f1 != NULL ? strchr(f1 + 1, '|') : NULL;
		if (f2 == NULL)
			fail_msg("golden/cases: a line without two '|': %s", line);
		*f1 = *f2 = '\0';
		i++;
		n += run_case(dir, tmp, i, trim(line), trim(f1 + 1), trim(f2 + 1));
	}
	assert_true(i >= 20);
	tu_soft_done("golden outputs");
	assert_int_equal(n, i);
	tu_rmtree(tmp);
	free(tmp);
	free(cases);
	free(dir);
	free(cases_path);
}

static void same_with_pipeline(void **state)
{
	char *p = tu_real_data("../../estimator/pipelines/radial-profiles.yaml");

	desc_path = p;
	golden_outputs(state);
	desc_path = NULL;
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(golden_outputs),
		cmocka_unit_test(same_with_pipeline),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
