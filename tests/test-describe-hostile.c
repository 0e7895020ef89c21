/*
 * Pipeline descriptions a hostile user hands `snapmem estimate --pipeline`, beyond the reader's own
 * error table (tests/test-describe.c): a FIFO in place of the file (refused at once, never read
 * until a writer comes), `let` names that each use the one after them twice (a description of a
 * few hundred bytes whose evaluation would take 2^63 steps: refused when the file is read, naming
 * the definition, not only when one evaluation passes 1,000,000 steps, which per halo and per
 * variant kept tradeoff busy for minutes), and a byte count too large for 64 bits (the message names FILE:LINE:COL). Each
 * is exit 2 with one line on stderr and nothing on stdout, within a deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "snapmem/describe.h"
#include "util.h"

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* exit 2, one line naming want on stderr, nothing on stdout, within 20 s */
static void expect_refused(const char *what, char *const argv[], const char *want)
{
	tu_result r = tu_runv_timeout(argv, 20);

	if (r.status != 2 || r.out[0] != '\0' || tu_count_lines(r.err) != 1 ||
	    strstr(r.err, want) == NULL)
		tu_soft_fail(what, "exit %d, stdout '%.200s', stderr '%.300s', want exit 2 and '%s'",
			     r.status, r.out, r.err, want);
	tu_result_free(&r);
}

/* A FIFO with no writer: opening it for reading would block until one comes. */
static void test_fifo(void **state)
{
	char *dir = tu_tmpdir(), *fifo = tu_path(dir, "pipe.yaml");
	char *argv[] = {"estimate", "--pipeline", fifo, NULL};
	char *targv[] = {"tradeoff", "--pipeline", fifo, NULL};

	(void)state;
	assert_int_equal(mkfifo(fifo, 0600), 0);
	expect_refused("estimate --pipeline FIFO", argv, "not a regular file");
	expect_refused("tradeoff --pipeline FIFO", targv, "not a regular file");
	tu_soft_done("fifo");
	tu_rmtree(dir);
	free(fifo);
	free(dir);
}

/* a0 = a1 + a1, a1 = a2 + a2, ..., a62 = a63 + a63: 2^64 terms once expanded */
static char *doubling_lets(const char *fmt)
{
	size_t cap = 16384, n = 0;
	char *s = malloc(cap);
	int i;

	assert_non_null(s);
	n += (size_t)snprintf(s + n, cap - n, "pipeline: x\nlet:\n");
	for (i = 0; i < 63; i++)
		n += (size_t)snprintf(s + n, cap - n, fmt, i, i + 1, i + 1);
	n += (size_t)snprintf(s + n, cap - n, "  a63: 1\nstages:\n  - id: s\n    arrays:\n"
			      "      - {name: q, dtype: uint8, count: a0}\n");
	assert_true(n < cap);
	return s;
}

static void test_let_blowup(void **state)
{
	static const char *const fmts[] = {
		"  a%d: a%d + a%d\n",
		"  a%d: \"if(a%d > 0, a%d, 1)\"\n",  /* if() evaluates one branch; both are counted */
	};
	char *dir = tu_tmpdir();
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		char *text = doubling_lets(fmts[i]), *path = tu_fmt("%s/lets%zu.yaml", dir, i);
		char *argv[] = {"estimate", "--pipeline", path, NULL};
		sm_pipeline_desc *d = NULL;
		sm_error err = {0};
		int rc = sm_desc_parse("x.yaml", text, strlen(text), &d, &err);

		/* found when the file is read, at a definition, whatever the variant */
		if (rc != SM_EFORMAT || d != NULL || strncmp(err.msg, "x.yaml:", 7) != 0 ||
		    strstr(err.msg, "more than 10000 steps to evaluate") == NULL)
			tu_soft_fail(fmts[i], "rc %d, message '%s'", rc, err.msg);
		sm_desc_free(d);
		write_text(path, text);
		expect_refused(fmts[i], argv, "more than 10000 steps to evaluate");
		free(text);
		free(path);
	}
	tu_soft_done("let blow-up");
	tu_rmtree(dir);
	free(dir);
}

/* Lets used many times over but within the bound are fine: a0 = a1 + a1 ... a9 = 1: 1,023 terms. */
static void test_let_reuse_ok(void **state)
{
	char text[2048];
	size_t n = 0;
	int i;
	sm_pipeline_desc *d = NULL;
	sm_error err = {0};

	(void)state;
	n += (size_t)snprintf(text + n, sizeof(text) - n, "pipeline: x\nlet:\n");
	for (i = 0; i < 9; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "  a%d: a%d + a%d\n", i, i + 1,
				      i + 1);
	n += (size_t)snprintf(text + n, sizeof(text) - n, "  a9: 1\nstages:\n  - id: s\n"
			      "    arrays:\n      - {name: q, dtype: uint8, count: a0}\n");
	assert_int_equal(sm_desc_parse("x.yaml", text, n, &d, &err), 0);
	sm_desc_free(d);
}

/* 2^64 - 1 float64 elements: the byte count overflows; the message names the count's place. */
static void test_byte_overflow_place(void **state)
{
	char *dir = tu_tmpdir(), *path = tu_path(dir, "huge.yaml");
	char *argv[] = {"estimate", "--pipeline", path, NULL};

	(void)state;
	write_text(path, "pipeline: x\nstages:\n  - id: s\n    arrays:\n"
		   "      - {name: q, dtype: float64, count: 18446744073709551615}\n");
	expect_refused("byte count overflow", argv, "huge.yaml:5:42: ");
	/* a smaller halo's replay (the largest one's is fine): the array's place, not just the halo */
	write_text(path, "pipeline: x\nstages:\n  - id: s\n    per_halo: true\n    arrays:\n"
		   "      - {name: a, dtype: uint8, count: \"if(sphere == sphere_max, 1, "
		   "18446744073709551615)\", free: end}\n"
		   "      - {name: b, dtype: uint8, count: \"if(sphere == sphere_max, 1, "
		   "18446744073709551615)\", free: end}\n");
	expect_refused("halo replay overflow", argv, "huge.yaml:7:16: live bytes with b");
	tu_soft_done("byte count overflow");
	tu_rmtree(dir);
	free(path);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fifo),
		cmocka_unit_test(test_let_blowup),
		cmocka_unit_test(test_let_reuse_ok),
		cmocka_unit_test(test_byte_overflow_place),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
