/*
 * `snapmem profile -- CMD` through the binary, on small programs built by the Makefile
 * (tests/progs/, -g) and, when Debian's python3 with numpy is installed, a Python script: exit
 * status passthrough, signals (memory.json marked incomplete, 128+N), a command that cannot run
 * (127, nothing written), an unwritable DIR (2, the command never starts), markers from C (the
 * existing API with a NULL profiler) and Python (the snapmem module), file:line and the function
 * name of a static function (libdw), leaks, stacks.folded, --follow-fork, `snapmem report DIR`
 * without an estimate, `snapmem diff` and its budget, and both link modes of libsnapmem measuring
 * the same allocated peak. Measurement tests skip themselves in sanitizer builds (no jemalloc, no
 * preload library).
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "util.h"

static char *tmp;

static char *prog(const char *name)
{
	const char *d = getenv("SNAPMEM_TEST_PROGS");
	if (!d)
		fail_msg("SNAPMEM_TEST_PROGS is not set (run the tests through make check)");
	return tu_path(d, name);
}

static json_t *load(const char *dir, const char *file)
{
	char *p = tu_path(dir, file);
	json_error_t je;
	json_t *j = json_load_file(p, 0, &je);
	if (!j)
		fail_msg("%s: %s", p, je.text);
	free(p);
	return j;
}

static json_t *stage(json_t *doc, const char *id)
{
	json_t *st;
	size_t i;
	json_array_foreach(json_object_get(doc, "stages"), i, st)
		if (strcmp(json_string_value(json_object_get(st, "id")), id) == 0)
			return st;
	fail_msg("no stage '%s'", id);
	return NULL;
}

static int64_t geti(json_t *o, const char *a, const char *b)
{
	json_t *v = json_object_get(o, a);
	if (b)
		v = json_object_get(v, b);
	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

/* Does any frame of the site have this function name? */
static int site_has(json_t *site, const char *fn)
{
	json_t *fr;
	size_t i;
	json_array_foreach(json_object_get(site, "frames"), i, fr) {
		const char *f = json_string_value(json_object_get(fr, "function"));
		if (f && strcmp(f, fn) == 0)
			return 1;
	}
	return 0;
}

static tu_result profile(const char *out, const char *extra, const char *p, const char *a1,
			 const char *a2)
{
	if (extra)
		return tu_run("profile", "--out", out, extra, "--", p, a1, a2, NULL);
	return tu_run("profile", "--out", out, "--", p, a1, a2, NULL);
}

static int setup(void **state)
{
	(void)state;
	tmp = tu_tmpdir();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmtree(tmp);
	free(tmp);
	return 0;
}

static void test_link_modes_measure_the_same(void **state)
{
	(void)state;
	if (tu_sanitized())
		skip();
	int64_t above[2];
	const char *names[2] = { "lib-linkmode", "lib-linkmode-shared" };
	for (int i = 0; i < 2; i++) {
		char *p = prog(names[i]), *out = tu_path(tmp, names[i]);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			execl(p, p, out, (char *)NULL);
			_exit(127);
		}
		int st = 0;
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		json_error_t je;
		json_t *doc = json_load_file(out, 0, &je);
		assert_non_null(doc);
		/* a tracked 4 MiB array and an untracked 8 MiB malloc live together */
		above[i] = geti(stage(doc, "work"), "allocated", "peak") - geti(doc, "baseline", "allocated");
		assert_true(above[i] >= (int64_t)(12u << 20));
		json_decref(doc);
		free(p);
		free(out);
	}
	int64_t d = above[0] - above[1];
	assert_true(d < (int64_t)(1 << 20) && d > -(int64_t)(1 << 20));
}

static void test_exit_status_and_outputs(void **state)
{
	(void)state;
	if (tu_sanitized())
		skip();
	char *out = tu_path(tmp, "exit7"), *p = prog("alloc");
	tu_result r = profile(out, NULL, p, "7", NULL);
	assert_int_equal(r.status, 7);
	assert_non_null(strstr(r.err, "report.html"));
	assert_int_equal(tu_count_lines(r.err), 1);
	json_t *doc = load(out, "memory.json");
	assert_string_equal(json_string_value(json_object_get(doc, "schema")), "snapmem.memory/1");
	assert_true(json_is_true(json_object_get(doc, "complete")));
	assert_int_equal(geti(doc, "exit", "status"), 7);
	/* no markers: the whole process is one stage, and it saw the 24 MiB buffer */
	assert_int_equal(json_array_size(json_object_get(doc, "stages")), 1);
	json_t *st = stage(doc, "process");
	assert_true(geti(st, "allocated", "peak") - geti(doc, "baseline", "allocated") >= (24 << 20));
	assert_true(json_is_real(json_object_get(json_object_get(doc, "profiler"), "symbolize_s")));
	assert_string_equal(json_string_value(json_object_get(json_object_get(doc, "profiler"),
							       "symbolizer")), "libdw");
	json_decref(doc);
	char *html = tu_path(out, "report.html");
	char *text = tu_read_file(html, NULL);
	assert_non_null(text);
	assert_non_null(strstr(text, "<svg"));
	assert_null(strstr(text, "<script"));
	assert_non_null(strstr(text, "make_buffer"));
	free(text);
	free(html);
	char *md = tu_path(out, "report.md");
	assert_true(tu_exists(md));
	free(md);
	tu_result_free(&r);
	free(out);
	free(p);
}

static void check_incomplete(const char *out, const char *reason_part, int status)
{
	json_t *doc = load(out, "memory.json");
	assert_true(json_is_false(json_object_get(doc, "complete")));
	const char *why = json_string_value(json_object_get(doc, "incomplete_reason"));
	assert_non_null(why);
	if (!strstr(why, reason_part))
		fail_msg("reason '%s' lacks '%s'", why, reason_part);
	assert_int_equal(geti(doc, "exit", "status"), status);
	json_decref(doc);
}

static void test_signals_and_early_ends(void **state)
{
	(void)state;
	if (tu_sanitized())
		skip();
	char *p = prog("alloc"), *out = tu_path(tmp, "sig");
	tu_result r = profile(out, NULL, p, "kill", "15");
	assert_int_equal(r.status, 143);
	check_incomplete(out, "signal 15", 143);
	tu_result_free(&r);
	/* the stage open at the signal is closed at the write and flagged */
	json_t *doc = load(out, "memory.json");
	assert_true(json_is_true(json_object_get(stage(doc, "process"), "closed_at_write")));
	json_decref(doc);

	r = profile(out, NULL, p, "segv", NULL);
	assert_int_equal(r.status, 139);
	check_incomplete(out, "SIGSEGV", 139);
	tu_result_free(&r);

	/* SIGKILL cannot be caught: snapmem profile writes the incomplete document itself, and the
	 * previous run's complete document is not left behind */
	r = profile(out, NULL, p, "kill", "9");
	assert_int_equal(r.status, 137);
	check_incomplete(out, "SIGKILL", 137);
	tu_result_free(&r);

	free(p);
	free(out);
}

static void test_command_cannot_run(void **state)
{
	(void)state;
	char *out = tu_path(tmp, "nocmd");
	tu_result r = tu_run("profile", "--out", out, "--", "snapmem-no-such-command-xyz", NULL);
	assert_int_equal(r.status, 127);
	assert_int_equal(tu_count_lines(r.err), 1);
	assert_non_null(strstr(r.err, "'snapmem-no-such-command-xyz': command not found"));
	assert_false(tu_exists(out));
	tu_result_free(&r);

	char *plain = tu_path(tmp, "not-executable.sh");
	FILE *f = fopen(plain, "w");
	assert_non_null(f);
	fputs("#!/bin/sh\nexit 0\n", f);
	fclose(f);
	chmod(plain, 0644);
	r = tu_run("profile", "--out", out, "--", plain, NULL);
	assert_int_equal(r.status, 127);
	assert_int_equal(tu_count_lines(r.err), 1);
	assert_non_null(strstr(r.err, "Permission denied"));
	assert_false(tu_exists(out));
	tu_result_free(&r);

	r = tu_run("profile", "--out", out, NULL);
	assert_int_equal(r.status, 2);
	tu_result_free(&r);
	r = tu_run("profile", "--bogus", "--", "true", NULL);
	assert_int_equal(r.status, 2);
	tu_result_free(&r);
	free(plain);
	free(out);
}

static void test_unwritable_dir(void **state)
{
	(void)state;
	if (tu_sanitized())
		skip();
	char *file = tu_path(tmp, "a-file"), *under = tu_path(file, "out"),
	     *marker = tu_path(tmp, "started");
	FILE *f = fopen(file, "w");
	assert_non_null(f);
	fclose(f);
	char script[4200];
	snprintf(script, sizeof(script), "touch '%s'", marker);
	const char *dirs[2] = { under, file };
	for (int i = 0; i < 2; i++) {
		tu_result r = tu_run("profile", "--out", dirs[i], "--", "/bin/sh", "-c", script, NULL);
		assert_int_equal(r.status, 2);
		assert_int_equal(tu_count_lines(r.err), 1);
		assert_non_null(strstr(r.err, dirs[i]));
		assert_false(tu_exists(marker)); /* CMD never started */
		tu_result_free(&r);
	}
	free(file);
	free(under);
	free(marker);
}

static void check_markers(const char *dir)
{
	json_t *doc = load(dir, "memory.json");
	json_t *load_st = stage(doc, "load"), *red = stage(doc, "reduce");
	assert_int_equal(geti(load_st, "depth", NULL), 1);
	assert_int_equal(geti(red, "instance", NULL), 3);
	assert_int_equal(geti(load_st, "requested", "peak"), 8 << 20);
	assert_int_equal(geti(red, "requested", "peak"), 10 << 20);
	json_t *arr;
	size_t i;
	int seen = 0;
	json_array_foreach(json_object_get(doc, "arrays"), i, arr) {
		const char *n = json_string_value(json_object_get(arr, "name"));
		if (strcmp(n, "grid") == 0) {
			assert_int_equal(geti(arr, "requested", NULL), 8 << 20);
			assert_string_equal(json_string_value(json_object_get(arr, "stage")), "load");
			assert_string_equal(json_string_value(json_object_get(arr, "freed_in")), "reduce");
			seen++;
		} else if (strcmp(n, "partial") == 0) {
			assert_int_equal(geti(arr, "requested", NULL), 2 << 20);
			seen++;
		}
	}
	assert_int_equal(seen, 2);
	assert_true(json_is_true(json_object_get(doc, "complete")));
	json_decref(doc);
}

static void test_c_markers(void **state)
{
	(void)state;
	if (tu_sanitized())
		skip();
	const char *names[2] = { "lib-markers-shared", "lib-markers" };
	int64_t above[2], grid[2];
	for (int i = 0; i < 2; i++) {
		char *p = prog(names[i]), *out = tu_path(tmp, names[i]);
		tu_result r = profile(out, NULL, p, NULL, NULL);
		assert_int_equal(r.status, 0);
		check_markers(out);
		/* both link modes: the tracked arrays reach the preloaded profiler, whose large
		 * blocks are glibc's (a page at most above the request) */
		json_t *doc = load(out, "memory.json"), *arr;
		size_t k;
		above[i] = geti(stage(doc, "load"), "allocated", "peak") -
			   geti(doc, "baseline", "allocated");
		grid[i] = -1;
		json_array_foreach(json_object_get(doc, "arrays"), k, arr)
			if (strcmp(json_string_value(json_object_get(arr, "name")), "grid") == 0)
				grid[i] = geti(arr, "allocated", NULL);
		assert_true(grid[i] >= 8 << 20 && grid[i] <= (8 << 20) + 4096);
		assert_true(above[i] >= 8 << 20);
		json_decref(doc);
		tu_result_free(&r);
		free(p);
		free(out);
	}
	assert_int_equal(grid[0], grid[1]);
	assert_true(above[0] - above[1] < (1 << 20) && above[1] - above[0] < (1 << 20));
}

/* The line of tests/progs/alloc.c marked BUFFER-LINE. */
static int buffer_line(void)
{
	const char *data = getenv("SNAPMEM_REAL_DATA");
	assert_non_null(data);
	char *src = tu_path(data, "../progs/alloc.c");
	char *text = tu_read_file(src, NULL);
	assert_non_null(text);
	char *hit = strstr(text, "BUFFER-LINE");
	assert_non_null(hit);
	int line = 1;
	for (char *c = text; c < hit; c++)
		line += *c == '\n';
	free(text);
	free(src);
	return line;
}

static void test_file_line_leaks_folded(void **state)
{
	(void)state;
	if (tu_sanitized())
		skip();
	char *p = prog("alloc"), *out = tu_path(tmp, "lines");
	tu_result r = profile(out, NULL, p, "0", NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	json_t *doc = load(out, "memory.json"), *s, *fr;
	size_t i, k;
	int line = buffer_line(), found = 0;
	json_array_foreach(json_object_get(doc, "sites"), i, s) {
		json_array_foreach(json_object_get(s, "frames"), k, fr) {
			const char *fn = json_string_value(json_object_get(fr, "function"));
			const char *file = json_string_value(json_object_get(fr, "file"));
			if (fn && strcmp(fn, "make_buffer") == 0 && file &&
			    strstr(file, "progs/alloc.c") &&
			    json_integer_value(json_object_get(fr, "line")) == line)
				found = 1;
		}
	}
	assert_true(found);
	/* the 3 MiB block is live at exit: a leak from leak_some */
	json_t *lk = json_array_get(json_object_get(doc, "leaks"), 0);
	assert_non_null(lk);
	assert_true(geti(lk, "bytes", NULL) >= (3 << 20));
	assert_true(site_has(json_array_get(json_object_get(doc, "sites"), (size_t)geti(lk, "site", NULL)),
			     "leak_some"));
	json_decref(doc);

	/* stacks.folded: root first, ';' between frames, one space, the bytes */
	char *fp = tu_path(out, "stacks.folded");
	char *text = tu_read_file(fp, NULL);
	assert_non_null(text);
	int lines = 0, big = 0;
	for (char *ln = strtok(text, "\n"); ln; ln = strtok(NULL, "\n")) {
		char *sp = strrchr(ln, ' ');
		assert_non_null(sp);
		assert_true(strchr(ln, ' ') == sp);
		char *end;
		unsigned long long b = strtoull(sp + 1, &end, 10);
		assert_true(*end == '\0' && b > 0);
		if (strstr(ln, "main;make_buffer ") && b >= (24u << 20))
			big = 1;
		lines++;
	}
	assert_true(lines >= 1);
	assert_true(big);
	free(text);
	free(fp);
	free(p);
	free(out);
}

/* A site whose frames name fn, or NULL. */
static json_t *site_named(json_t *doc, const char *fn)
{
	json_t *s;
	size_t i;
	json_array_foreach(json_object_get(doc, "sites"), i, s)
		if (site_has(s, fn))
			return s;
	return NULL;
}

/*
 * Large blocks (128 KiB and more) under snapmem profile are glibc's (src/profiler/large.c):
 * tests/progs/large.c goes through every entry point and checks its blocks itself (exit 0). Its
 * peak, 40 MiB + 3 bytes requested with a 33 MiB temporary freed within microseconds, is counted
 * at glibc's page granularity (jemalloc's size classes would make it 48.5 MiB) and seen although
 * no timeline tick can; the sites and the leak are there; SNAPMEM_PROFILE_LARGE sets the
 * threshold, "off" gives jemalloc back the whole process, a bad value is refused before the
 * program starts.
 */
static void test_large_blocks(void **state)
{
	(void)state;
	if (tu_sanitized())
		skip();
	char *p = prog("large"), *out = tu_path(tmp, "large"), *marker = tu_path(tmp, "large-ran");
	const int64_t mib = 1 << 20;
	tu_result r = profile(out, NULL, p, NULL, NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	json_t *doc = load(out, "memory.json");
	json_t *lg = json_object_get(json_object_get(doc, "allocator"), "large");
	assert_true(json_is_object(lg));
	assert_string_equal(json_string_value(json_object_get(lg, "allocator")), "glibc");
	assert_int_equal(geti(lg, "min_bytes", NULL), 128 << 10);
	assert_true(geti(lg, "blocks", NULL) >= 400); /* the two threads' alone */
	assert_int_equal(geti(lg, "live_blocks", NULL), 1);
	assert_true(geti(lg, "live_bytes", NULL) >= 3 * mib + 4096);
	int64_t above = geti(stage(doc, "process"), "allocated", "peak") -
			geti(doc, "baseline", "allocated");
	assert_true(above >= 40 * mib && above < 41 * mib);
	json_t *tr = site_named(doc, "transient");
	assert_non_null(tr);
	assert_true(geti(tr, "bytes", NULL) >= 33 * mib);
	json_t *lk = json_array_get(json_object_get(doc, "leaks"), 0);
	assert_non_null(lk);
	assert_true(geti(lk, "bytes", NULL) >= 3 * mib + 4096);
	assert_true(site_has(json_array_get(json_object_get(doc, "sites"), (size_t)geti(lk, "site", NULL)),
			     "leak_large"));
	json_decref(doc);

	/* a threshold of 1 MiB: the three blocks of the peak are still glibc's */
	setenv("SNAPMEM_PROFILE_LARGE", "1M", 1);
	r = profile(out, NULL, p, NULL, NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	doc = load(out, "memory.json");
	lg = json_object_get(json_object_get(doc, "allocator"), "large");
	assert_int_equal(geti(lg, "min_bytes", NULL), 1 << 20);
	above = geti(stage(doc, "process"), "allocated", "peak") - geti(doc, "baseline", "allocated");
	assert_true(above >= 40 * mib && above < 41 * mib);
	json_decref(doc);

	/* off: jemalloc serves everything, size classes included (6 + 2.5 + 40 MiB) */
	setenv("SNAPMEM_PROFILE_LARGE", "off", 1);
	r = profile(out, NULL, p, NULL, NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	doc = load(out, "memory.json");
	assert_true(json_is_null(json_object_get(json_object_get(doc, "allocator"), "large")));
	above = geti(stage(doc, "process"), "allocated", "peak") - geti(doc, "baseline", "allocated");
	assert_true(above >= 48 * mib + mib / 2);
	json_decref(doc);

	/* a bad value: exit 2, one line naming it, the program never starts */
	const char *bad[] = { "12", "0B", "lots", "" };
	char script[PATH_MAX + 16];
	snprintf(script, sizeof(script), "touch '%s'", marker);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setenv("SNAPMEM_PROFILE_LARGE", bad[i], 1);
		r = tu_run("profile", "--out", out, "--", "/bin/sh", "-c", script, NULL);
		assert_int_equal(r.status, 2);
		assert_int_equal(tu_count_lines(r.err), 1);
		assert_non_null(strstr(r.err, "SNAPMEM_PROFILE_LARGE"));
		assert_false(tu_exists(marker));
		tu_result_free(&r);
	}
	unsetenv("SNAPMEM_PROFILE_LARGE");
	free(marker);
	free(out);
	free(p);
}

static void test_follow_fork(void **state)
{
	(void)state;
	if (tu_sanitized())
		skip();
	char *p = prog("alloc"), *out = tu_path(tmp, "fork");
	tu_result r = profile(out, "--follow-fork", p, "fork", NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	char *md = tu_path(out, "report.md");
	char *text = tu_read_file(md, NULL);
	assert_non_null(text);
	assert_non_null(strstr(text, "2 processes measured"));
	free(text);
	/* without --follow-fork only the program's own process writes */
	r = profile(out, NULL, p, "fork", NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	text = tu_read_file(md, NULL);
	assert_non_null(text);
	assert_null(strstr(text, "processes measured"));
	free(text);
	free(md);
	free(p);
	free(out);
}

/* A file holding text: 0, or -1. */
static int write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	int ok = f != NULL && fputs(text, f) >= 0;

	return f != NULL && fclose(f) == 0 && ok ? 0 : -1;
}

static void test_report_and_diff(void **state)
{
	(void)state;
	if (tu_sanitized())
		skip();
	char *p = prog("alloc"), *a = tu_path(tmp, "A"), *b = tu_path(tmp, "B"),
	     *c = tu_path(tmp, "C");
	tu_result r = profile(a, NULL, p, "0", NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	r = profile(b, NULL, p, "0", NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);

	r = tu_run("report", a, NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "allocated peak"));
	assert_non_null(strstr(r.out, "make_buffer"));
	tu_result_free(&r);
	r = tu_run("report", a, "--format", "json", NULL);
	assert_int_equal(r.status, 0);
	json_t *j = json_loads(r.out, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "schema")), "snapmem.measured/1");
	json_decref(j);
	tu_result_free(&r);

	r = tu_run("diff", a, b, "--budget", "5", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "process"));
	tu_result_free(&r);

	/* C: A's document with the process stage's peak 30 MiB higher */
	mkdir(c, 0755);
	json_t *doc = load(a, "memory.json");
	json_t *st = stage(doc, "process");
	json_t *al = json_object_get(st, "allocated");
	json_object_set_new(al, "peak", json_integer(json_integer_value(json_object_get(al, "peak")) +
						     (30 << 20)));
	char *cm = tu_path(c, "memory.json");
	assert_int_equal(json_dump_file(doc, cm, 0), 0);
	json_decref(doc);
	r = tu_run("diff", a, c, "--budget", "10", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.out, "OVER"));
	tu_result_free(&r);
	r = tu_run("diff", a, c, NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	r = tu_run("diff", a, c, "--budget", "1000", "--format", "json", NULL);
	assert_int_equal(r.status, 0);
	j = json_loads(r.out, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(j, "over_budget")), 0);
	json_decref(j);
	tu_result_free(&r);

	/* the memory.json files themselves, wherever they were copied: the same comparison */
	char *am = tu_path(a, "memory.json"), *copy = tu_path(tmp, "c-memory-copy.json"), *text;
	char *junk = tu_path(tmp, "not-a-memory.json");
	text = tu_read_file(cm, NULL);
	assert_non_null(text);
	assert_int_equal(write_text(copy, text), 0);
	free(text);
	r = tu_run("diff", am, copy, "--budget", "10", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.out, "OVER"));
	tu_result_free(&r);
	r = tu_run("diff", a, copy, "--budget", "10", "--format", "json", NULL);
	assert_int_equal(r.status, 1);
	j = json_loads(r.out, 0, NULL);
	assert_non_null(j);
	assert_true(json_integer_value(json_object_get(j, "over_budget")) > 0);
	json_decref(j);
	tu_result_free(&r);
	/* -o never onto an input file; a file that is not a memory document: one line, exit 2 */
	r = tu_run("diff", am, copy, "-o", copy, NULL);
	assert_int_equal(r.status, 2);
	assert_int_equal(tu_count_lines(r.err), 1);
	tu_result_free(&r);
	text = tu_read_file(copy, NULL);
	assert_non_null(strstr(text, "snapmem.memory/1"));
	free(text);
	assert_int_equal(write_text(junk, "not json\n"), 0);
	r = tu_run("diff", am, junk, NULL);
	assert_int_equal(r.status, 2);
	assert_int_equal(tu_count_lines(r.err), 1);
	assert_non_null(strstr(r.err, junk));
	tu_result_free(&r);
	free(am);
	free(copy);
	free(junk);

	r = tu_run("diff", a, "/nonexistent-snapmem-dir", NULL);
	assert_int_equal(r.status, 2);
	assert_int_equal(tu_count_lines(r.err), 1);
	tu_result_free(&r);
	r = tu_run("diff", a, b, "--budget", "-3", NULL);
	assert_int_equal(r.status, 2);
	tu_result_free(&r);
	r = tu_run("diff", a, NULL);
	assert_int_equal(r.status, 2);
	tu_result_free(&r);
	free(cm);
	free(p);
	free(a);
	free(b);
	free(c);
}

/* Debian's python3 with numpy, if installed: its path, else NULL. */
static const char *numpy_python(void)
{
	static const char *const cands[] = { "/usr/bin/python3", NULL };
	for (int i = 0; cands[i]; i++) {
		if (access(cands[i], X_OK) != 0)
			continue;
		char cmd[256];
		snprintf(cmd, sizeof(cmd), "%s -c 'import numpy' >/dev/null 2>&1", cands[i]);
		if (system(cmd) == 0)
			return cands[i];
	}
	return NULL;
}

static void test_python_markers(void **state)
{
	(void)state;
	const char *py = numpy_python();
	if (tu_sanitized() || !py)
		skip();
	char *script = tu_path(tmp, "markers.py"), *out = tu_path(tmp, "py");
	FILE *f = fopen(script, "w");
	assert_non_null(f);
	fputs("import numpy as np, snapmem, sys\n"
	      "with snapmem.stage('load'):\n"
	      "    a = snapmem.track('a', np.ones(2 << 20))\n"          /* 16 MiB */
	      "@snapmem.stage('step', instance=4)\n"
	      "def step(a):\n"
	      "    t = snapmem.track('t', a * 2.0)\n"
	      "    return float(t.sum())\n"
	      "s = step(a)\n"
	      "del a\n"
	      "snapmem.begin('tail'); snapmem.end()\n"
	      "with snapmem.stage('odd'):\n"
	      "    o = snapmem.track('o', np.zeros(5000000, np.uint8))\n"
	      "print(snapmem.active(), s)\n"
	      "sys.exit(3)\n", f);
	fclose(f);
	/* the module is found in the build tree */
	const char *bin = getenv("SNAPMEM_BIN");
	char *bindir = strdup(bin);
	*strrchr(bindir, '/') = '\0';
	char *pypath = tu_path(bindir, "python");
	setenv("PYTHONPATH", pypath, 1);
	/* outside snapmem profile every call is a no-op */
	char cmd[8400];
	snprintf(cmd, sizeof(cmd), "%s %s > %s/plain.txt", py, script, tmp);
	int st = system(cmd);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 3);
	char *plain = tu_path(tmp, "plain.txt"), *txt = tu_read_file(plain, NULL);
	assert_non_null(txt);
	assert_non_null(strstr(txt, "False 4194304.0"));
	free(txt);

	tu_result r = profile(out, NULL, py, script, NULL);
	assert_int_equal(r.status, 3);
	assert_non_null(strstr(r.out, "True 4194304.0"));
	json_t *doc = load(out, "memory.json");
	assert_true(json_is_true(json_object_get(doc, "complete")));
	json_t *ld = stage(doc, "load"), *sp = stage(doc, "step");
	assert_int_equal(geti(ld, "requested", "peak"), 16 << 20);
	assert_int_equal(geti(sp, "instance", NULL), 4);
	assert_int_equal(geti(sp, "requested", "peak"), 32 << 20);
	/* allocated: the array, its double and the temporary a * 2.0 all live in the step */
	assert_true(geti(sp, "allocated", "peak") - geti(doc, "baseline", "allocated") >= (32 << 20));
	json_t *arr;
	size_t i;
	int freed = 0;
	json_array_foreach(json_object_get(doc, "arrays"), i, arr)
		if (strcmp(json_string_value(json_object_get(arr, "name")), "t") == 0 &&
		    json_is_string(json_object_get(arr, "freed_in")))
			freed = 1;
	assert_true(freed);
	stage(doc, "tail");
	/* a large array is glibc's block: allocated within a page of the request (jemalloc's size
	 * class would be 5 MiB, 4.9 % more) */
	int odd = 0;
	json_array_foreach(json_object_get(doc, "arrays"), i, arr)
		if (strcmp(json_string_value(json_object_get(arr, "name")), "o") == 0) {
			assert_int_equal(geti(arr, "requested", NULL), 5000000);
			assert_true(geti(arr, "allocated", NULL) >= 5000000 &&
				    geti(arr, "allocated", NULL) <= 5000000 + 4096);
			odd = 1;
		}
	assert_true(odd);
	assert_null(json_object_get(doc, "python_allocators")); /* --python-lines only */
	json_decref(doc);
	tu_result_free(&r);

	/* --python-lines: the tracked array 'a' is named by the script's line 3 (np.ones), and the
	 * temporary a * 2.0 (16 MiB, untracked) by line 6 */
	r = tu_run("profile", "--python-lines", "--out", out, "--", py, script, NULL);
	assert_int_equal(r.status, 3);
	tu_result_free(&r);
	doc = load(out, "memory.json");
	json_t *s, *fr;
	size_t k;
	int line3 = 0, line6 = 0;
	json_array_foreach(json_object_get(doc, "sites"), i, s) {
		json_array_foreach(json_object_get(s, "frames"), k, fr) {
			const char *file = json_string_value(json_object_get(fr, "file"));
			if (!json_is_true(json_object_get(fr, "python")) || !file ||
			    strcmp(file, script) != 0)
				continue;
			json_int_t line = json_integer_value(json_object_get(fr, "line"));
			line3 |= line == 3 && json_is_true(json_object_get(s, "tracked"));
			line6 |= line == 6 && !json_is_true(json_object_get(s, "tracked")) &&
				 json_integer_value(json_object_get(s, "bytes")) >= (16 << 20);
			break; /* the innermost Python frame */
		}
	}
	assert_true(line3);
	assert_true(line6);
	/* --python-lines also counts what Python's allocators and numpy's data handler hand out, per
	 * stage (tracemalloc's quantity): the arrays' requested bytes, plus a few small objects */
	json_t *pa = json_object_get(doc, "python_allocators"), *rec;
	assert_non_null(pa);
	assert_true(json_is_true(json_object_get(pa, "numpy")));
	int got_load = 0, got_odd = 0;
	json_array_foreach(json_object_get(pa, "stages"), i, rec) {
		const char *id = json_string_value(json_object_get(rec, "id"));
		json_int_t rise = json_integer_value(json_object_get(rec, "peak")) -
				  json_integer_value(json_object_get(rec, "begin"));
		if (strcmp(id, "load") == 0) {
			if (rise < (16 << 20) || rise > (16 << 20) + (64 << 10))
				fail_msg("python_allocators: stage 'load' rose %lld B, want 16 MiB + a "
					 "little", (long long)rise);
			got_load = 1;
		} else if (strcmp(id, "odd") == 0) {
			if (rise < 5000000 || rise > 5000000 + (64 << 10))
				fail_msg("python_allocators: stage 'odd' rose %lld B, want 5,000,000 + "
					 "a little", (long long)rise);
			got_odd = 1;
		}
	}
	assert_true(got_load && got_odd);
	json_decref(doc);
	char *folded = tu_path(out, "stacks.folded");
	txt = tu_read_file(folded, NULL);
	assert_non_null(txt);
	assert_non_null(strstr(txt, "step:markers.py:6"));
	free(txt);
	free(folded);
	unsetenv("PYTHONPATH");
	free(plain);
	free(pypath);
	free(bindir);
	free(script);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_link_modes_measure_the_same),
		cmocka_unit_test(test_exit_status_and_outputs),
		cmocka_unit_test(test_signals_and_early_ends),
		cmocka_unit_test(test_command_cannot_run),
		cmocka_unit_test(test_unwritable_dir),
		cmocka_unit_test(test_c_markers),
		cmocka_unit_test(test_file_line_leaks_folded),
		cmocka_unit_test(test_large_blocks),
		cmocka_unit_test(test_follow_fork),
		cmocka_unit_test(test_report_and_diff),
		cmocka_unit_test(test_python_markers),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
