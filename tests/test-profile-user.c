/*
 * `snapmem profile` of a program that ends through _exit (dash's `exit`, Python's os._exit, a
 * multiprocessing worker): the profiler inside it writes nothing, and snapmem profile writes a
 * document marked incomplete for it. What the user then reads must say so: the stderr summary
 * names no "peak 0 B" figures, the document records the process's pid, and `snapmem report DIR`
 * gives the reason on the document's line (closed parenthesis, then the exit status and pid) and
 * no zero figures (README.md's own example, `snapmem profile -- sh -c 'exit 7'`, printed "pid 0"
 * and a stray ")" at the start of the next line).
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

static void test_exit_without_handlers(void **state)
{
	char *dir, *out;
	const char *line;
	long pid = 0;
	tu_result r;

	(void)state;
	if (tu_sanitized())
		skip();  /* snapmem profile needs the preload library (not built under sanitizers) */
	dir = tu_tmpdir();
	out = tu_path(dir, "prof");
	r = tu_run("profile", "--out", out, "--", "/usr/bin/python3", "-c", "import os; os._exit(7)",
		   NULL);
	if (r.status != 7)
		fail_msg("profile: exit %d, want the program's 7: %s", r.status, r.err);
	if (strstr(r.err, "peak 0 B") != NULL || strstr(r.err, "no figures") == NULL)
		tu_soft_fail("summary", "stderr '%s'", r.err);
	tu_result_free(&r);

	r = tu_run("report", out, NULL);
	if (r.status != 0)
		fail_msg("report: exit %d: %s", r.status, r.err);
	line = strstr(r.out, "complete: no (");
	if (line == NULL || strstr(line, "); exit status 7; pid ") == NULL ||
	    sscanf(strstr(line, "; pid ") + 6, "%ld", &pid) != 1 || pid <= 0)
		tu_soft_fail("document line", "no 'complete: no (...); exit status 7; pid N>0' in:\n%s",
			     r.out);
	if (strstr(r.out, "\n)") != NULL || strstr(r.out, "allocated peak: 0 B") != NULL)
		tu_soft_fail("figures", "a stray ')' or zero figures in:\n%s", r.out);
	tu_result_free(&r);
	tu_soft_done("exit without handlers");
	tu_rmtree(dir);
	free(out);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exit_without_handlers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
