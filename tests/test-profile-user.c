/*
 * `snapmem profile` of programs that end without their exit handlers, as users' programs do:
 *   - through _exit (a C program, a forked C child, Python's os._exit, multiprocessing workers
 *     started by fork, whose every end is os._exit): the preloaded library catches _exit and
 *     writes the document complete, with "exit": {"status", "via": "_exit"}; with --follow-fork
 *     the report adds the children up;
 *   - a multiprocessing pool's terminate() (SIGTERM to workers, possibly while they write at
 *     os._exit): each worker still leaves a document with its figures;
 *   - Ctrl-C in Python (KeyboardInterrupt: the program's finally blocks run, then CPython sends
 *     itself SIGINT at its default action): memory.json with the measured figures, incomplete,
 *     naming SIGINT; exit status 130 as in a plain run;
 *   - SIGKILL, which nothing catches: snapmem profile writes a document marked incomplete, and what
 *     the user reads says so (no "peak 0 B", the process's pid, the document line closes its
 *     parenthesis before "; killed by signal 9 ...").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <dirent.h>
#include <jansson.h>

#include "util.h"

static const char *python(void)
{
	return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : NULL;
}

static char *write_script(const char *dir, const char *name, const char *text)
{
	char *path = tu_path(dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static json_t *load(const char *path)
{
	json_error_t je;
	json_t *j = json_load_file(path, 0, &je);
	if (!j)
		fail_msg("%s: %s", path, je.text);
	return j;
}

/* The highest allocated peak of any stage, less the baseline. */
static long long above_baseline(json_t *doc)
{
	json_t *st;
	size_t i;
	long long peak = 0;
	json_array_foreach(json_object_get(doc, "stages"), i, st) {
		long long a = json_integer_value(json_object_get(json_object_get(st, "allocated"), "peak"));
		if (a > peak)
			peak = a;
	}
	return peak - json_integer_value(json_object_get(json_object_get(doc, "baseline"), "allocated"));
}

/* The children's documents (memory.PID.json) in dir, loaded; returns how many (at most max). */
static int children(const char *dir, json_t **docs, int max)
{
	DIR *d = opendir(dir);
	int n = 0;
	assert_non_null(d);
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		if (strncmp(e->d_name, "memory.", 7) != 0 || strcmp(e->d_name, "memory.json") == 0 ||
		    strstr(e->d_name, ".json") == NULL || n >= max)
			continue;
		char *p = tu_path(dir, e->d_name);
		docs[n++] = load(p);
		free(p);
	}
	closedir(d);
	return n;
}

static const char *via(json_t *doc)
{
	return json_string_value(json_object_get(json_object_get(doc, "exit"), "via"));
}

static long long exit_status(json_t *doc)
{
	return json_integer_value(json_object_get(json_object_get(doc, "exit"), "status"));
}

/* A C program that ends with _exit(5) after a 24 MiB buffer: its own figures, complete. */
static void test_c_exit(void **state)
{
	(void)state;
	if (tu_sanitized())
		skip(); /* snapmem profile needs the preload library (not built under sanitizers) */
	char *dir = tu_tmpdir(), *out = tu_path(dir, "prof");
	char *prog = tu_path(getenv("SNAPMEM_TEST_PROGS"), "alloc");
	tu_result r = tu_run("profile", "--out", out, "--", prog, "_exit", NULL);
	assert_int_equal(r.status, 5);
	if (strstr(r.err, "INCOMPLETE") != NULL || strstr(r.err, "peak ") == NULL)
		fail_msg("stderr: %s", r.err);
	tu_result_free(&r);
	char *mem = tu_path(out, "memory.json");
	json_t *doc = load(mem);
	assert_true(json_is_true(json_object_get(doc, "complete")));
	assert_int_equal(exit_status(doc), 5);
	assert_non_null(via(doc));
	assert_string_equal(via(doc), "_exit");
	assert_true(above_baseline(doc) >= 24ll << 20);
	json_decref(doc);
	r = tu_run("report", out, NULL);
	assert_int_equal(r.status, 0);
	if (strstr(r.out, "complete: yes; exit status 5 (through _exit)") == NULL)
		fail_msg("report:\n%s", r.out);
	tu_result_free(&r);
	tu_rmtree(dir);
	free(mem);
	free(prog);
	free(out);
	free(dir);
}

/* A forked C child ending with _exit(4), keeping 16 MiB: with --follow-fork its document is
 * written, complete, and the report adds the two processes up. */
static void test_c_child_exit(void **state)
{
	(void)state;
	if (tu_sanitized())
		skip();
	char *dir = tu_tmpdir(), *out = tu_path(dir, "prof");
	char *prog = tu_path(getenv("SNAPMEM_TEST_PROGS"), "alloc");
	tu_result r = tu_run("profile", "--follow-fork", "--out", out, "--", prog, "fork_exit", NULL);
	assert_int_equal(r.status, 4);
	tu_result_free(&r);
	json_t *kids[4];
	int n = children(out, kids, 4);
	assert_int_equal(n, 1);
	assert_true(json_is_true(json_object_get(kids[0], "complete")));
	assert_int_equal(exit_status(kids[0]), 4);
	assert_non_null(via(kids[0]));
	assert_string_equal(via(kids[0]), "_exit");
	assert_true(above_baseline(kids[0]) >= 16ll << 20);
	json_decref(kids[0]);
	char *md = tu_path(out, "report.md");
	char *text = tu_read_file(md, NULL);
	assert_non_null(text);
	if (strstr(text, "2 processes measured") == NULL || strstr(text, "(through _exit)") == NULL)
		fail_msg("report.md:\n%s", text);
	free(text);
	free(md);
	tu_rmtree(dir);
	free(prog);
	free(out);
	free(dir);
}

/* Python's multiprocessing: two Process workers (fork; they end through os._exit) holding 8 and
 * 16 MiB, then a pool terminated by its context manager (SIGTERM to its workers). */
static void test_python_multiprocessing(void **state)
{
	(void)state;
	const char *py = python();
	if (tu_sanitized() || !py)
		skip();
	char *dir = tu_tmpdir(), *out = tu_path(dir, "prof"), *out2 = tu_path(dir, "pool");
	char *script = write_script(dir, "mp.py",
		"import multiprocessing as mp\n"
		"def work(mib):\n"
		"    b = bytearray(mib << 20)\n"
		"    return len(b)\n"
		"if __name__ == '__main__':\n"
		"    mp.set_start_method('fork')\n"
		"    ps = [mp.Process(target=work, args=(m,)) for m in (8, 16)]\n"
		"    for p in ps: p.start()\n"
		"    for p in ps: p.join()\n"
		"    print([p.exitcode for p in ps])\n");
	char *pool = write_script(dir, "pool.py",
		"import multiprocessing as mp\n"
		"def work(mib):\n"
		"    b = bytearray(mib << 20)\n"
		"    return len(b)\n"
		"if __name__ == '__main__':\n"
		"    mp.set_start_method('fork')\n"
		"    with mp.Pool(2) as pool:\n"
		"        print(pool.map(work, [4, 6]))\n");
	tu_result r = tu_run("profile", "--follow-fork", "--out", out, "--", py, script, NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "[0, 0]"));
	tu_result_free(&r);
	json_t *kids[4];
	int n = children(out, kids, 4);
	assert_int_equal(n, 2);
	long long got[2];
	for (int i = 0; i < n; i++) {
		assert_true(json_is_true(json_object_get(kids[i], "complete")));
		assert_non_null(via(kids[i]));
		assert_string_equal(via(kids[i]), "_exit");
		assert_int_equal(exit_status(kids[i]), 0);
		got[i] = above_baseline(kids[i]);
		json_decref(kids[i]);
	}
	long long lo = got[0] < got[1] ? got[0] : got[1], hi = got[0] < got[1] ? got[1] : got[0];
	if (lo < 8ll << 20 || hi < 16ll << 20)
		fail_msg("workers' peaks above their baselines %lld and %lld B, want 8 and 16 MiB", lo, hi);
	r = tu_run("report", out, "--format", "json", NULL);
	assert_int_equal(r.status, 0);
	json_t *rep = json_loads(r.out, 0, NULL);
	assert_non_null(rep);
	assert_int_equal(json_array_size(json_object_get(rep, "processes")), 3);
	json_decref(rep);
	tu_result_free(&r);

	/* terminate(): every worker leaves its figures, however it was ended */
	r = tu_run("profile", "--follow-fork", "--out", out2, "--", py, pool, NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	n = children(out2, kids, 4);
	assert_int_equal(n, 2);
	for (int i = 0; i < n; i++) {
		assert_true(json_array_size(json_object_get(kids[i], "stages")) >= 1);
		assert_true(above_baseline(kids[i]) > 0);
		json_decref(kids[i]);
	}
	tu_rmtree(dir);
	free(pool);
	free(script);
	free(out2);
	free(out);
	free(dir);
}

/* Ctrl-C in Python: KeyboardInterrupt, the program's finally runs, exit status 130 as plainly,
 * and memory.json carries the figures measured until then. */
static void test_python_ctrl_c(void **state)
{
	(void)state;
	const char *py = python();
	if (tu_sanitized() || !py)
		skip();
	char *dir = tu_tmpdir(), *out = tu_path(dir, "prof");
	char *script = write_script(dir, "int.py",
		"import os, signal, time\n"
		"x = bytearray(12 << 20)\n"
		"try:\n"
		"    os.kill(os.getpid(), signal.SIGINT)\n"
		"    time.sleep(5)\n"
		"finally:\n"
		"    print('finally ran')\n");
	tu_result r = tu_run("profile", "--out", out, "--", py, script, NULL);
	assert_int_equal(r.status, 130);
	assert_non_null(strstr(r.out, "finally ran"));
	assert_non_null(strstr(r.err, "KeyboardInterrupt"));
	if (strstr(r.err, "no figures") != NULL || strstr(r.err, "peak ") == NULL)
		fail_msg("stderr: %s", r.err);
	tu_result_free(&r);
	char *mem = tu_path(out, "memory.json");
	json_t *doc = load(mem);
	assert_true(json_is_false(json_object_get(doc, "complete")));
	const char *why = json_string_value(json_object_get(doc, "incomplete_reason"));
	assert_non_null(why);
	assert_non_null(strstr(why, "SIGINT"));
	assert_int_equal(exit_status(doc), 130);
	assert_true(above_baseline(doc) >= 12ll << 20);
	json_decref(doc);
	tu_rmtree(dir);
	free(mem);
	free(script);
	free(out);
	free(dir);
}

/* SIGKILL: nothing inside the program can write; what snapmem profile writes says so. */
static void test_uncatchable_end(void **state)
{
	char *dir, *out;
	const char *line;
	long pid = 0;
	tu_result r;
	const char *py = python();

	(void)state;
	if (tu_sanitized() || !py)
		skip();
	dir = tu_tmpdir();
	out = tu_path(dir, "prof");
	r = tu_run("profile", "--out", out, "--", py, "-c",
		   "import os, signal; os.kill(os.getpid(), signal.SIGKILL)", NULL);
	if (r.status != 137)
		fail_msg("profile: exit %d, want 137: %s", r.status, r.err);
	if (strstr(r.err, "peak 0 B") != NULL || strstr(r.err, "no figures") == NULL)
		tu_soft_fail("summary", "stderr '%s'", r.err);
	tu_result_free(&r);

	r = tu_run("report", out, NULL);
	if (r.status != 0)
		fail_msg("report: exit %d: %s", r.status, r.err);
	line = strstr(r.out, "complete: no (");
	if (line == NULL || strstr(line, "); killed by signal 9 (exit status 137); pid ") == NULL ||
	    sscanf(strstr(line, "; pid ") + 6, "%ld", &pid) != 1 || pid <= 0)
		tu_soft_fail("document line",
			     "no 'complete: no (...); killed by signal 9 (exit status 137); pid N>0' in:\n%s",
			     r.out);
	if (strstr(r.out, "\n)") != NULL || strstr(r.out, "allocated peak: 0 B") != NULL)
		tu_soft_fail("figures", "a stray ')' or zero figures in:\n%s", r.out);
	tu_result_free(&r);
	tu_soft_done("uncatchable end");
	tu_rmtree(dir);
	free(out);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_c_exit),
		cmocka_unit_test(test_c_child_exit),
		cmocka_unit_test(test_python_multiprocessing),
		cmocka_unit_test(test_python_ctrl_c),
		cmocka_unit_test(test_uncatchable_end),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
