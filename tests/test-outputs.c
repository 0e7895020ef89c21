/*
 * What snapmem writes, and what it must never write over (include/snapmem/outfile.h,
 * docs/PIPELINE.md "Run directories"), through the library and the binary:
 *   - the shared writer: only absent targets and regular files are replaced; a FIFO, a symbolic
 *     link, a directory, a socket or (as root, made in the test's own directory) a character device
 *     is refused and left as it was; a command's own inputs are refused (same st_dev/st_ino, or a
 *     chunk file of the snapshot's directories); temporaries of dead processes are removed;
 *   - `-o` of estimate, tradeoff, report and diff: exit 2 and one line naming the path and what it is,
 *     for every kind of special file; `report RUN -o RUN/memory.json` refused; `-o -` is stdout;
 *   - runs into one --out started at once: exactly one succeeds, the others exit 2 at once naming
 *     the directory; the result is one run's (one run id in every file, report passes); with
 *     --force every run that succeeds leaves a consistent directory; a lock held by another
 *     process is named in the refusal;
 *   - a failed run (allocation failure, a full disk at every size, a directory in place of
 *     memory.json) leaves an earlier run byte for byte and a fresh directory absent; --no-profile
 *     over an earlier run leaves no memory.json or report of the earlier run beside the new files;
 *   - SIGINT over an earlier run: the earlier run unchanged, memory.interrupted.json beside it;
 *   - SIGKILL (--inject-signal STAGE:9): what is left is a hidden staging directory only, which
 *     the next run (plain or --force) removes; stale temporaries of older versions too;
 *   - report refuses estimate.json, memory.json (and, for --tradeoff, profiles.hdf5) of
 *     different runs, and still reads a directory written before run ids.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <hdf5.h>
#include <jansson.h>

#include "snapmem/outfile.h"
#include "util.h"

static char *dir, *base, *oldrun;

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* Exit 2, exactly one stderr line holding every NULL-terminated needle, nothing on stdout. */
static void expect_refused(tu_result *r, ...)
{
	va_list ap;
	const char *n;

	if (r->status != 2 || tu_count_lines(r->err) != 1)
		fail_msg("status %d, stderr '%s'", r->status, r->err);
	va_start(ap, r);
	while ((n = va_arg(ap, const char *)) != NULL)
		if (strstr(r->err, n) == NULL)
			fail_msg("'%s' not in stderr '%s'", n, r->err);
	va_end(ap);
	assert_string_equal(r->out, "");
	tu_result_free(r);
}

/* A whole file, binary or not, into a malloc'd buffer (*len its size); NULL when unreadable. */
static char *read_bin(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *b = NULL;
	size_t cap = 0, n = 0, got;

	*len = 0;
	if (f == NULL)
		return NULL;
	do {
		if (n == cap) {
			char *nb = realloc(b, cap = cap ? 2 * cap : 65536);

			assert_non_null(nb);
			b = nb;
		}
		got = fread(b + n, 1, cap - n, f);
		n += got;
	} while (got > 0);
	fclose(f);
	*len = n;
	return b;
}

/* A process id that is no longer in use: a child that has exited and been reaped. */
static long dead_pid(void)
{
	pid_t p = fork();
	int st;

	assert_true(p >= 0);
	if (p == 0)
		_exit(0);
	assert_int_equal(waitpid(p, &st, 0), p);
	return (long)p;
}

/* Every entry of d (hidden ones too) with its bytes, as one text, to compare a directory before
 * and after: "name size\n<bytes>\n" per entry in name order; subdirectories as "name/ dir". */
static char *dir_image(const char *d)
{
	struct dirent **list = NULL;
	char *img = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&img, &len);
	int n, i;

	assert_non_null(f);
	n = scandir(d, &list, NULL, alphasort);
	if (n < 0) {
		fprintf(f, "(absent)\n");
		n = 0;
	}
	for (i = 0; i < n; i++) {
		const char *e = list[i]->d_name;
		char *p = tu_path(d, e);
		struct stat st;

		if (strcmp(e, ".") != 0 && strcmp(e, "..") != 0 && lstat(p, &st) == 0) {
			if (S_ISREG(st.st_mode)) {
				size_t m = 0;
				char *b = read_bin(p, &m);

				fprintf(f, "%s %zu\n", e, m);
				if (b != NULL)
					fwrite(b, 1, m, f);
				fputc('\n', f);
				free(b);
			} else {
				fprintf(f, "%s/ mode %o\n", e, (unsigned)(st.st_mode & S_IFMT));
			}
		}
		free(p);
		free(list[i]);
	}
	free(list);
	fclose(f);
	return img;
}

/* Names in d beginning with '.': staging directories and temporaries. */
static int hidden_entries(const char *d)
{
	DIR *dd = opendir(d);
	struct dirent *e;
	int n = 0;

	if (dd == NULL)
		return 0;
	while ((e = readdir(dd)) != NULL)
		if (e->d_name[0] == '.' && strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(dd);
	return n;
}

static json_t *load_json(const char *d, const char *name)
{
	char *p = tu_path(d, name);
	json_error_t e;
	json_t *j = json_load_file(p, 0, &e);

	free(p);
	return j;
}

/* profiles.hdf5's root attribute run_id (malloc'd; "" when absent). */
static char *profiles_run_id(const char *d)
{
	char *p = tu_path(d, "profiles.hdf5"), *s = strdup("");
	hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT), a, t, mt;

	assert_true(f >= 0);
	if (H5Aexists(f, "run_id") > 0) {
		size_t n;

		a = H5Aopen(f, "run_id", H5P_DEFAULT);
		t = H5Aget_type(a);
		n = H5Tget_size(t);
		free(s);
		s = calloc(n + 1, 1);
		assert_non_null(s);
		mt = H5Tcopy(H5T_C_S1);
		H5Tset_size(mt, n + 1);
		H5Tset_cset(mt, H5Tget_cset(t));
		assert_true(H5Aread(a, mt, s) >= 0);
		H5Tclose(mt);
		H5Tclose(t);
		H5Aclose(a);
	}
	H5Fclose(f);
	free(p);
	return s;
}

/* A run directory holds one run: the same run id in estimate.json, memory.json, profiles.hdf5 and
 * report.md, no temporaries, and report reads it. Returns the id (malloc'd). */
static char *check_one_run(const char *d)
{
	json_t *e = load_json(d, "estimate.json"), *m = load_json(d, "memory.json");
	const char *eid, *mid;
	char *pid, *md, *mdp = tu_path(d, "report.md"), *id;
	tu_result r;

	assert_non_null(e);
	assert_non_null(m);
	eid = json_string_value(json_object_get(json_object_get(e, "run"), "id"));
	mid = json_string_value(json_object_get(json_object_get(m, "run"), "id"));
	assert_non_null(eid);
	assert_non_null(mid);
	assert_int_equal(strlen(mid), SM_RUN_ID_LEN);
	assert_string_equal(eid, mid);
	assert_non_null(json_string_value(json_object_get(json_object_get(m, "run"), "started")));
	pid = profiles_run_id(d);
	assert_string_equal(pid, mid);
	md = tu_read_file(mdp, NULL);
	assert_non_null(md);
	assert_non_null(strstr(md, mid));
	assert_int_equal(hidden_entries(d), 0);
	id = strdup(mid);
	r = tu_run("report", d, NULL);
	if (r.status != 0)
		fail_msg("report '%s': status %d: %s", d, r.status, r.err);
	assert_non_null(strstr(r.out, id));
	tu_result_free(&r);
	free(md);
	free(mdp);
	free(pid);
	json_decref(e);
	json_decref(m);
	return id;
}

static int setup(void **state)
{
	tu_result r;

	(void)state;
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	dir = tu_tmpdir();
	base = tu_path(dir, "mock");
	r = tu_run("mock", base, "--gas", "120000", "--halos", "3", "--files", "2", "--seed", "3",
		   NULL);
	if (r.status != 0)
		fail_msg("mock: %s", r.err);
	tu_result_free(&r);
	oldrun = tu_path(dir, "old");
	r = tu_run("run", "--base-path", base, "--snap", "99", "--out", oldrun, "--halos", "1",
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
	free(base);
	free(oldrun);
	return 0;
}

/* A copy of the earlier run at d (cp -a), to fail runs over. */
static void copy_run(const char *from, const char *to)
{
	char *cmd = tu_fmt("rm -rf '%s' && cp -a '%s' '%s'", to, from, to);

	assert_int_equal(system(cmd), 0);
	free(cmd);
}

/* ---- the shared writer, through the library ------------------------------------------------- */

static int make_socket(const char *path)
{
	struct sockaddr_un a;
	int s = socket(AF_UNIX, SOCK_STREAM, 0);

	if (s < 0 || strlen(path) >= sizeof(a.sun_path))
		return -1;
	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	strcpy(a.sun_path, path);
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(s);
		return -1;
	}
	return s;
}

static void test_writer_targets(void **state)
{
	char *d = tu_tmpdir(), *reg = tu_path(d, "reg"), *fifo = tu_path(d, "fifo"),
	     *lnk = tu_path(d, "lnk"), *sub = tu_path(d, "sub"), *sock = tu_path(d, "sock"),
	     *dev = tu_path(d, "dev"), *got;
	sm_error err = {0};
	struct stat st;
	int s;

	(void)state;
	write_text(reg, "before\n");
	assert_int_equal(mkfifo(fifo, 0644), 0);
	assert_int_equal(symlink("reg", lnk), 0);
	assert_int_equal(mkdir(sub, 0755), 0);
	s = make_socket(sock);
	assert_true(s >= 0);

	{
		char *absent = tu_path(d, "absent");

		assert_int_equal(sm_out_check(absent, NULL, 0, &err), 0);
		free(absent);
	}
	assert_int_equal(sm_out_check(reg, NULL, 0, &err), 0);
	assert_int_equal(sm_out_check(fifo, NULL, 0, &err), SM_EEXIST);
	assert_non_null(strstr(err.msg, "is a FIFO"));
	assert_non_null(strstr(err.msg, fifo));
	assert_int_equal(sm_out_check(lnk, NULL, 0, &err), SM_EEXIST);
	assert_non_null(strstr(err.msg, "is a symbolic link"));
	assert_int_equal(sm_out_check(sub, NULL, 0, &err), SM_EEXIST);
	assert_non_null(strstr(err.msg, "is a directory"));
	assert_int_equal(sm_out_check(sock, NULL, 0, &err), SM_EEXIST);
	assert_non_null(strstr(err.msg, "is a socket"));

	/* sm_out_write replaces a regular file, refuses the others and leaves them as they were */
	assert_int_equal(sm_out_write(reg, "after\n", 6, NULL, 0, &err), 0);
	got = tu_read_file(reg, NULL);
	assert_string_equal(got, "after\n");
	free(got);
	assert_int_equal(sm_out_write(fifo, "x", 1, NULL, 0, &err), SM_EEXIST);
	assert_int_equal(lstat(fifo, &st), 0);
	assert_true(S_ISFIFO(st.st_mode));
	assert_int_equal(sm_out_write(lnk, "x", 1, NULL, 0, &err), SM_EEXIST);
	assert_int_equal(lstat(lnk, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	got = tu_read_file(reg, NULL);
	assert_string_equal(got, "after\n");
	free(got);
	assert_int_equal(sm_out_write(sock, "x", 1, NULL, 0, &err), SM_EEXIST);
	assert_int_equal(lstat(sock, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	if (geteuid() == 0) {
		/* a device node made here (never the system's /dev) */
		assert_int_equal(mknod(dev, S_IFCHR | 0644, makedev(1, 3)), 0);
		assert_int_equal(sm_out_write(dev, "x", 1, NULL, 0, &err), SM_EEXIST);
		assert_non_null(strstr(err.msg, "is a character device"));
		assert_int_equal(lstat(dev, &st), 0);
		assert_true(S_ISCHR(st.st_mode));
	} else {
		printf("  not root: the character-device case is skipped (mknod needs root)\n");
	}
	assert_int_equal(hidden_entries(d), 0);
	close(s);
	tu_rmtree(d);
	free(d);
	free(reg);
	free(fifo);
	free(lnk);
	free(sub);
	free(sock);
	free(dev);
}

static void test_writer_inputs_and_stale(void **state)
{
	char *d = tu_tmpdir(), *in = tu_path(d, "input.json"), *hl = tu_path(d, "hardlink.json"),
	     *chunks = tu_path(d, "chunks"), *chunk = tu_path(chunks, "snap_099.0.hdf5"),
	     *other = tu_path(chunks, "notes.txt"), *dead, *live, *got;
	sm_out_input ins[2] = {{NULL, NULL}, {NULL, ".hdf5"}};
	sm_error err = {0};

	(void)state;
	ins[0].path = in;
	ins[1].path = chunks;
	write_text(in, "input\n");
	assert_int_equal(link(in, hl), 0);
	assert_int_equal(mkdir(chunks, 0755), 0);
	write_text(chunk, "chunk\n");
	assert_int_equal(sm_out_write(in, "x", 1, ins, 2, &err), SM_EEXIST);
	assert_non_null(strstr(err.msg, "is an input of this command"));
	assert_int_equal(sm_out_write(hl, "x", 1, ins, 2, &err), SM_EEXIST);
	assert_int_equal(sm_out_write(chunk, "x", 1, ins, 2, &err), SM_EEXIST);
	assert_non_null(strstr(err.msg, chunks));
	got = tu_read_file(in, NULL);
	assert_string_equal(got, "input\n");
	free(got);
	got = tu_read_file(chunk, NULL);
	assert_string_equal(got, "chunk\n");
	free(got);
	/* beside the inputs, other files are fine */
	assert_int_equal(sm_out_write(other, "notes\n", 6, ins, 2, &err), 0);

	/* temporaries: a dead process's is removed when the same target is written, a live one's
	 * is left alone */
	assert_int_equal(sm_out_temp_pid(".x.snapmem-tmp.1234.00ab00cd"), 1234);
	assert_int_equal(sm_out_temp_pid(".snapmem-staging.77.0123abcd"), 77);
	assert_int_equal(sm_out_temp_pid("x.snapmem-tmp.1234.00ab00cd"), 0);
	assert_int_equal(sm_out_temp_pid(".x.snapmem-tmp.abc.1"), 0);
	dead = tu_fmt("%s/.out.txt.snapmem-tmp.%ld.0000beef", d, dead_pid());
	live = tu_fmt("%s/.out.txt.snapmem-tmp.%ld.0000beef", d, (long)getpid());
	write_text(dead, "stale");
	write_text(live, "live");
	{
		char *o = tu_path(d, "out.txt");

		assert_int_equal(sm_out_write(o, "ok\n", 3, NULL, 0, &err), 0);
		free(o);
	}
	assert_false(tu_exists(dead));
	assert_true(tu_exists(live));
	tu_rmtree(d);
	free(d);
	free(in);
	free(hl);
	free(chunks);
	free(chunk);
	free(other);
	free(dead);
	free(live);
}

/* ---- -o of the commands ---------------------------------------------------------------------- */

/*
 * sync_later (outfile.h): the commit only starts the writeback and renames; the file is whole
 * under its name. sm_rundir_commit syncs every staged file before the first rename: a staged file
 * it cannot open (no descriptor left: RLIMIT_NOFILE in a child) fails the commit with one line
 * naming it, and nothing is moved in.
 */
static void test_sync_later(void **state)
{
	char *d = tu_tmpdir(), *p = tu_path(d, "late.txt"), *run = tu_path(d, "run"), *got,
	     *moved = tu_path(run, "estimate.json"), staged[4096];
	sm_outfile o;
	sm_rundir rd;
	sm_error err = {0};
	const char *names[1] = {"estimate.json"};
	pid_t pid;
	int status;

	(void)state;
	assert_int_equal(sm_outfile_open(&o, p, NULL, 0, &err), 0);
	assert_int_equal(write(o.fd, "later\n", 6), 6);
	o.sync_later = 1;
	assert_int_equal(sm_outfile_commit(&o, &err), 0);
	got = tu_read_file(p, NULL);
	assert_string_equal(got, "later\n");
	free(got);
	assert_int_equal(hidden_entries(d), 0);

	/* the commit's sync of the staged files: a child with no descriptor to spare */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit rl;
		int next;

		if (sm_rundir_open(&rd, run, 0, &err) != 0 ||
		    sm_rundir_staged(&rd, "estimate.json", staged, sizeof(staged)) == NULL ||
		    sm_out_write(staged, "{}\n", 3, NULL, 0, &err) != 0)
			_exit(10);
		next = dup(0); /* the lowest free descriptor: the commit's own gets it, no more */
		if (next < 0)
			_exit(11);
		close(next);
		rl.rlim_cur = (rlim_t)next + 1;
		rl.rlim_max = (rlim_t)next + 1;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			_exit(12);
		if (sm_rundir_commit(&rd, names, 1, 1, &err) != SM_EIO ||
		    strstr(err.msg, "estimate.json': cannot open the staged file") == NULL ||
		    strchr(err.msg, '\n') != NULL || access(moved, F_OK) == 0)
			_exit(13);
		sm_rundir_close(&rd);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_false(tu_exists(moved));
	free(p);
	free(run);
	free(moved);
	tu_rmtree(d);
	free(d);
}

static void test_o_special_files(void **state)
{
	char *d = tu_tmpdir(), *fifo = tu_path(d, "fifo"), *lnk = tu_path(d, "lnk"),
	     *reg = tu_path(d, "reg"), *sub = tu_path(d, "sub"), *sock = tu_path(d, "sock"),
	     *dev = tu_path(d, "dev"), *got;
	const char *targets[5];
	const char *kinds[5] = {"is a FIFO", "is a symbolic link", "is a directory", "is a socket",
				"is a character device"};
	struct stat st;
	int s, i, nt = 4;
	tu_result r;

	(void)state;
	write_text(reg, "kept\n");
	assert_int_equal(mkfifo(fifo, 0644), 0);
	assert_int_equal(symlink(reg, lnk), 0);
	assert_int_equal(mkdir(sub, 0755), 0);
	s = make_socket(sock);
	assert_true(s >= 0);
	targets[0] = fifo;
	targets[1] = lnk;
	targets[2] = sub;
	targets[3] = sock;
	if (geteuid() == 0) {
		assert_int_equal(mknod(dev, S_IFCHR | 0644, makedev(1, 3)), 0);
		targets[nt++] = dev;
	} else {
		printf("  not root: -o over a character device is skipped (mknod needs root)\n");
	}
	for (i = 0; i < nt; i++) {
		mode_t before;

		assert_int_equal(lstat(targets[i], &st), 0);
		before = st.st_mode & S_IFMT;
		r = tu_run("estimate", "-o", targets[i], NULL);
		expect_refused(&r, targets[i], kinds[i], NULL);
		r = tu_run("estimate", "--format", "json", "-o", targets[i], NULL);
		expect_refused(&r, targets[i], kinds[i], NULL);
		r = tu_run("tradeoff", "-o", targets[i], NULL);
		expect_refused(&r, targets[i], kinds[i], NULL);
		r = tu_run("report", oldrun, "-o", targets[i], NULL);
		expect_refused(&r, targets[i], kinds[i], NULL);
		r = tu_run("report", oldrun, "--format", "html", "-o", targets[i], NULL);
		expect_refused(&r, targets[i], kinds[i], NULL);
		r = tu_run("diff", oldrun, oldrun, "-o", targets[i], NULL);
		expect_refused(&r, targets[i], kinds[i], NULL);
		assert_int_equal(lstat(targets[i], &st), 0);
		assert_int_equal(st.st_mode & S_IFMT, before);
	}
	got = tu_read_file(reg, NULL);
	assert_string_equal(got, "kept\n");
	free(got);
	assert_int_equal(hidden_entries(d), 0);

	/* -o - is standard output */
	r = tu_run("estimate", "--format", "json", "-o", "-", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "\"schema\": \"snapmem.estimate/1\""));
	tu_result_free(&r);
	r = tu_run("report", oldrun, "-o", "-", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "snapmem report"));
	tu_result_free(&r);
	assert_false(tu_exists("-"));
	close(s);
	tu_rmtree(d);
	free(d);
	free(fifo);
	free(lnk);
	free(reg);
	free(sub);
	free(sock);
	free(dev);
}

static void test_o_own_input(void **state)
{
	char *run = tu_path(dir, "own"), *mem = tu_path(run, "memory.json"),
	     *est = tu_path(run, "estimate.json"), *prof = tu_path(run, "profiles.hdf5"),
	     *rep = tu_path(run, "report.md"), *hl = tu_path(dir, "hardlink.json"),
	     *chunk = tu_fmt("%s/snapdir_099/snap_099.0.hdf5", base),
	     *cat = tu_fmt("%s/groups_099/fof_subhalo_tab_099.0.hdf5", base), *img;
	tu_result r;

	(void)state;
	copy_run(oldrun, run);
	img = dir_image(run);
	r = tu_run("report", run, "-o", mem, NULL);
	expect_refused(&r, mem, "is an input of this command", NULL);
	r = tu_run("report", run, "--format", "json", "-o", est, NULL);
	expect_refused(&r, est, "is an input of this command", NULL);
	r = tu_run("report", "--tradeoff", run, run, "-o", prof, NULL);
	expect_refused(&r, prof, "is an input of this command", NULL);
	assert_int_equal(link(mem, hl), 0);
	r = tu_run("report", run, "-o", hl, NULL);
	expect_refused(&r, hl, "is an input of this command", NULL);
	r = tu_run("estimate", "--calibrate", run, "-o", mem, NULL);
	expect_refused(&r, mem, "is an input of this command", NULL);
	r = tu_run("diff", oldrun, run, "-o", mem, NULL);
	expect_refused(&r, mem, "is an input of this command", NULL);
	{
		char *now = dir_image(run);

		assert_string_equal(now, img);
		free(now);
	}
	/* the snapshot's own chunk files */
	{
		size_t n0 = 0, n1 = 0, c0 = 0, c1 = 0;
		char *b0 = read_bin(chunk, &n0), *g0 = read_bin(cat, &c0), *b1, *g1;

		r = tu_run("estimate", "--base-path", base, "--snap", "99", "-o", chunk, NULL);
		expect_refused(&r, chunk, "is an input of this command", NULL);
		r = tu_run("tradeoff", "--base-path", base, "--snap", "99", "-o", cat, NULL);
		expect_refused(&r, cat, "is an input of this command", NULL);
		r = tu_run("estimate", "--snapshot", chunk, "-o", chunk, NULL);
		expect_refused(&r, chunk, "is an input of this command", NULL);
		b1 = read_bin(chunk, &n1);
		g1 = read_bin(cat, &c1);
		assert_true(n0 > 1000 && c0 > 1000);
		assert_true(n0 == n1 && memcmp(b0, b1, n0) == 0);
		assert_true(c0 == c1 && memcmp(g0, g1, c0) == 0);
		free(b0);
		free(b1);
		free(g0);
		free(g1);
	}
	/* a file of the run that report does not read may be written: its own report */
	r = tu_run("report", run, "--format", "markdown", "-o", rep, NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	assert_int_equal(hidden_entries(run), 0);
	tu_rmtree(run);
	unlink(hl);
	free(img);
	free(run);
	free(mem);
	free(est);
	free(prof);
	free(rep);
	free(hl);
	free(chunk);
	free(cat);
}

/* ---- runs at the same time into one --out ---------------------------------------------------- */

typedef struct child {
	pid_t pid;
	char *errp;
	int status;
	char *err;
} child;

/* Starts $SNAPMEM_BIN argv (stdout to /dev/null, stderr to a file) without waiting; res >= 0 sets
 * that resource limit to lim first (SIGXFSZ ignored, so that a full disk is EFBIG). */
static child start(int res, rlim_t lim, char *const argv[])
{
	static int seq;
	const char *bin = getenv("SNAPMEM_BIN");
	char *args[40], *supp = NULL;
	child c;
	int i;

	assert_non_null(bin);
	c.errp = tu_fmt("%s/child-%d.err", dir, seq++);
	c.status = -1;
	c.err = NULL;
	if (tu_sanitized()) {
		/* a file whose close failed on a full disk stays in libhdf5's tables */
		char *sp = tu_path(dir, "lsan.supp");

		write_text(sp, "leak:libhdf5\n");
		supp = tu_fmt("suppressions=%s:print_suppressions=0", sp);
		free(sp);
	}
	args[0] = (char *)bin;
	for (i = 0; argv[i] != NULL && i < 38; i++)
		args[i + 1] = argv[i];
	args[i + 1] = NULL;
	fflush(stdout);
	c.pid = fork();
	assert_true(c.pid >= 0);
	if (c.pid == 0) {
		int fd = open(c.errp, O_WRONLY | O_CREAT | O_TRUNC, 0644),
		    nul = open("/dev/null", O_WRONLY);

		if (fd < 0 || nul < 0)
			_exit(120);
		dup2(fd, 2);
		dup2(nul, 1);
		if (supp != NULL)
			setenv("LSAN_OPTIONS", supp, 1);
		if (res >= 0) {
			struct rlimit rl = {lim, lim};

			signal(SIGXFSZ, SIG_IGN);
			if (setrlimit(res, &rl) != 0)
				_exit(121);
		}
		execv(bin, args);
		_exit(122);
	}
	free(supp);
	return c;
}

static void finish(child *c)
{
	int st;

	assert_int_equal(waitpid(c->pid, &st, 0), c->pid);
	c->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	c->err = tu_read_file(c->errp, NULL);
	if (c->err == NULL)
		c->err = strdup("");
	unlink(c->errp);
	free(c->errp);
	c->errp = NULL;
}

#define NRUNS 4

static void concurrent(const char *out, int force)
{
	child c[NRUNS];
	char halos[NRUNS][8];
	int i, ok = 0;

	for (i = 0; i < NRUNS; i++) {
		snprintf(halos[i], sizeof(halos[i]), "%d", i + 1);
		c[i] = start(-1, 0, (char *const[]){"run", "--base-path", base, "--snap", "99",
						    "--out", (char *)out, "--halos", halos[i],
						    force ? "--force" : NULL, NULL});
	}
	for (i = 0; i < NRUNS; i++)
		finish(&c[i]);
	for (i = 0; i < NRUNS; i++) {
		if (c[i].status == 0) {
			ok++;
		} else {
			if (c[i].status != 2 || tu_count_lines(c[i].err) != 1 ||
			    strstr(c[i].err, out) == NULL ||
			    (strstr(c[i].err, "in use by another run") == NULL &&
			     strstr(c[i].err, "not empty") == NULL))
				fail_msg("run %d: status %d, stderr '%s'", i, c[i].status, c[i].err);
		}
		free(c[i].err);
	}
	if (force)
		assert_true(ok >= 1);
	else
		assert_int_equal(ok, 1);
}

static void test_concurrent_runs(void **state)
{
	int trial;

	(void)state;
	for (trial = 0; trial < 3; trial++) {
		char *out = tu_fmt("%s/conc-%d", dir, trial), *id;
		json_t *m;

		concurrent(out, 0);
		id = check_one_run(out);
		/* the halos of memory.json are the run's own (one of --halos 1..4) */
		m = load_json(out, "memory.json");
		assert_true(json_array_size(json_object_get(json_object_get(m, "run"), "halos")) >= 1);
		json_decref(m);
		/* and again with --force over it: whoever wins leaves one run */
		concurrent(out, 1);
		free(id);
		id = check_one_run(out);
		free(id);
		tu_rmtree(out);
		free(out);
	}
}

/* Another process holding the directory is named, and the directory is left as it was. */
static void test_lock_holder_named(void **state)
{
	char *out = tu_path(dir, "locked"), *pidtext, *img;
	int fd;
	tu_result r;

	(void)state;
	copy_run(oldrun, out);
	img = dir_image(out);
	fd = open(out, O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
	pidtext = tu_fmt("process %ld", (long)getpid());
	r = tu_run("run", "--base-path", base, "--snap", "99", "--out", out, "--force", NULL);
	expect_refused(&r, out, "in use by another run", pidtext, NULL);
	{
		char *now = dir_image(out);

		assert_string_equal(now, img);
		free(now);
	}
	close(fd);
	r = tu_run("run", "--base-path", base, "--snap", "99", "--out", out, "--force", NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	free(check_one_run(out));
	tu_rmtree(out);
	free(img);
	free(pidtext);
	free(out);
}

/* ---- failures leave the earlier state -------------------------------------------------------- */

static void test_failure_keeps_earlier_run(void **state)
{
	static const rlim_t lims[] = {8 << 10, 24 << 10, 48 << 10, 64 << 10, 80 << 10, 96 << 10,
				      160 << 10, 200 << 10};
	char *out = tu_path(dir, "keep"), *fresh = tu_path(dir, "fresh"), *img, *now, *memp;
	size_t i;
	tu_result r;

	(void)state;
	copy_run(oldrun, out);
	img = dir_image(out);

	/* an allocation failure */
	r = tu_run("run", "--base-path", base, "--snap", "99", "--out", out, "--force",
		   "--inject-oom", "*", NULL);
	if (r.status != 3 || tu_count_lines(r.err) != 1)
		fail_msg("inject-oom: status %d, stderr '%s'", r.status, r.err);
	tu_result_free(&r);
	now = dir_image(out);
	assert_string_equal(now, img);
	free(now);

	/* a full disk at every size: the earlier run whole, or a new run whole */
	for (i = 0; i < sizeof(lims) / sizeof(lims[0]); i++) {
		child c = start(RLIMIT_FSIZE, lims[i],
				(char *const[]){"run", "--base-path", base, "--snap", "99", "--out",
						out, "--force", "--halos", "1", NULL});

		finish(&c);
		printf("  over a run, RLIMIT_FSIZE %llu bytes: status %d: %s",
		       (unsigned long long)lims[i], c.status, c.err);
		if (c.status != 0) {
			if (c.status != 2 || tu_count_lines(c.err) != 1 ||
			    strstr(c.err, "File too large") == NULL)
				fail_msg("%llu bytes: status %d, stderr '%s'",
					 (unsigned long long)lims[i], c.status, c.err);
			now = dir_image(out);
			assert_string_equal(now, img);
			free(now);
		} else {
			free(check_one_run(out));
			free(img);
			img = dir_image(out);
		}
		free(c.err);

		/* the same into a fresh directory: nothing left on failure */
		c = start(RLIMIT_FSIZE, lims[i],
			  (char *const[]){"run", "--base-path", base, "--snap", "99", "--out", fresh,
					  "--halos", "1", NULL});
		finish(&c);
		if (c.status != 0) {
			if (c.status != 2 || tu_count_lines(c.err) != 1)
				fail_msg("fresh, %llu bytes: status %d, stderr '%s'",
					 (unsigned long long)lims[i], c.status, c.err);
			assert_false(tu_exists(fresh));
		} else {
			free(check_one_run(fresh));
		}
		free(c.err);
		tu_rmtree(fresh);
	}
	/* a full disk after profiles.hdf5 and estimate.json are whole (the case that used to keep
	 * them beside the earlier report): an empty selection writes a small profiles.hdf5 (8 KiB)
	 * and estimate.json (8 KiB), then memory.json (over 60 KiB) hits a 30 KiB limit */
	for (i = 0; i < 2; i++) {
		const char *o = i == 0 ? out : fresh;
		child c = start(RLIMIT_FSIZE, 30 << 10,
				(char *const[]){"run", "--base-path", base, "--snap", "99", "--out",
						(char *)o, "--force", "--halos", "0", NULL});

		finish(&c);
		printf("  --halos 0, RLIMIT_FSIZE 30 KiB, %s: status %d: %s",
		       i == 0 ? "over a run" : "fresh", c.status, c.err);
		if (c.status != 2 || tu_count_lines(c.err) != 1 ||
		    strstr(c.err, "memory.json") == NULL || strstr(c.err, "File too large") == NULL)
			fail_msg("status %d, stderr '%s'", c.status, c.err);
		free(c.err);
	}
	now = dir_image(out);
	assert_string_equal(now, img);
	free(now);
	assert_false(tu_exists(fresh));

	/* a directory in place of memory.json: refused before anything is read */
	copy_run(oldrun, out);
	memp = tu_path(out, "memory.json");
	assert_int_equal(unlink(memp), 0);
	assert_int_equal(mkdir(memp, 0755), 0);
	free(img);
	img = dir_image(out);
	r = tu_run("run", "--base-path", base, "--snap", "99", "--out", out, "--force", NULL);
	expect_refused(&r, memp, "is a directory", NULL);
	now = dir_image(out);
	assert_string_equal(now, img);
	free(now);

	/* --no-profile over an earlier run: the earlier memory.json and reports do not stay beside
	 * the new files */
	copy_run(oldrun, out);
	r = tu_run("run", "--base-path", base, "--snap", "99", "--out", out, "--force",
		   "--no-profile", NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	assert_false(tu_exists(memp));
	{
		char *rm = tu_path(out, "report.md"), *pr = tu_path(out, "profiles.hdf5");
		json_t *e = load_json(out, "estimate.json");
		char *pid = profiles_run_id(out);

		assert_false(tu_exists(rm));
		assert_true(tu_exists(pr));
		assert_string_equal(json_string_value(json_object_get(json_object_get(e, "run"),
								      "id")), pid);
		json_decref(e);
		free(pid);
		free(rm);
		free(pr);
	}
	assert_int_equal(hidden_entries(out), 0);
	tu_rmtree(out);
	free(memp);
	free(img);
	free(out);
	free(fresh);
}

static void test_signal_keeps_earlier_run(void **state)
{
	char *out = tu_path(dir, "sig"), *img, *now, *oldid, *ip = NULL;
	json_t *m, *old;
	tu_result r;
	size_t n = 0;

	(void)state;
	copy_run(oldrun, out);
	old = load_json(out, "memory.json");
	oldid = strdup(json_string_value(json_object_get(json_object_get(old, "run"), "id")));
	json_decref(old);
	img = dir_image(out);
	r = tu_run("run", "--base-path", base, "--snap", "99", "--out", out, "--force",
		   "--inject-signal", "load_positions:2", NULL);
	if (r.status != 130 || tu_count_lines(r.err) != 1)
		fail_msg("status %d, stderr '%s'", r.status, r.err);
	assert_non_null(strstr(r.err, "memory.interrupted.json"));
	assert_non_null(strstr(r.err, "unchanged"));
	tu_result_free(&r);
	/* the earlier run's files byte for byte, and its report still reads */
	ip = tu_path(out, "memory.interrupted.json");
	m = load_json(out, "memory.interrupted.json");
	assert_non_null(m);
	assert_true(json_is_false(json_object_get(m, "complete")));
	assert_string_not_equal(json_string_value(json_object_get(json_object_get(m, "run"), "id")),
				oldid);
	json_decref(m);
	{
		char *kept = read_bin(ip, &n);

		assert_int_equal(unlink(ip), 0);
		now = dir_image(out);
		assert_string_equal(now, img);
		free(now);
		{
			FILE *f = fopen(ip, "w");

			assert_non_null(f);
			fwrite(kept, 1, n, f);
			fclose(f);
		}
		free(kept);
	}
	free(check_one_run(out));
	/* the next complete run takes its place and removes it */
	r = tu_run("run", "--base-path", base, "--snap", "99", "--out", out, "--force", NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	assert_false(tu_exists(ip));
	free(check_one_run(out));
	tu_rmtree(out);
	free(ip);
	free(oldid);
	free(img);
	free(out);
}

/* SIGKILL leaves a hidden staging directory and nothing else; the next run clears it. */
static void test_sigkill_leftovers(void **state)
{
	char *out = tu_path(dir, "killed"), *p1, *p2, *p3, *visible;
	tu_result r;

	(void)state;
	r = tu_run("run", "--base-path", base, "--snap", "99", "--out", out, "--inject-signal",
		   "load_positions:9", NULL);
	assert_int_equal(r.status, 128 + SIGKILL);
	tu_result_free(&r);
	assert_true(tu_exists(out));
	assert_int_equal(hidden_entries(out), 1);   /* .snapmem-staging.PID.ID */
	visible = dir_image(out);
	assert_non_null(strstr(visible, ".snapmem-staging."));
	free(visible);
	/* a plain run: not refused as "not empty", and the staging directory is gone */
	r = tu_run("run", "--base-path", base, "--snap", "99", "--out", out, NULL);
	if (r.status != 0)
		fail_msg("after SIGKILL: status %d, stderr '%s'", r.status, r.err);
	tu_result_free(&r);
	free(check_one_run(out));

	/* killed over that run with --force: the run unchanged but for the staging directory */
	r = tu_run("run", "--base-path", base, "--snap", "99", "--out", out, "--force",
		   "--inject-signal", "histogram_write:9", NULL);
	assert_int_equal(r.status, 128 + SIGKILL);
	tu_result_free(&r);
	assert_int_equal(hidden_entries(out), 1);
	r = tu_run("report", out, NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	r = tu_run("run", "--base-path", base, "--snap", "99", "--out", out, "--force", NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	free(check_one_run(out));
	tu_rmtree(out);

	/* temporaries of dead processes, this version's and older ones', in an otherwise empty
	 * directory: ignored by the "not empty" check and removed */
	assert_int_equal(mkdir(out, 0755), 0);
	p1 = tu_fmt("%s/.profiles.hdf5.tmp.%ld", out, dead_pid());
	p2 = tu_fmt("%s/.memory.json.snapmem-tmp.%ld.0badcafe", out, dead_pid());
	p3 = tu_fmt("%s/.snapmem-staging.%ld.00112233445566778899aabbccddeeff", out, dead_pid());
	write_text(p1, "stale");
	write_text(p2, "stale");
	assert_int_equal(mkdir(p3, 0755), 0);
	{
		char *in = tu_path(p3, "profiles.hdf5");

		write_text(in, "stale");
		free(in);
	}
	r = tu_run("run", "--base-path", base, "--snap", "99", "--out", out, NULL);
	if (r.status != 0)
		fail_msg("over stale temporaries: status %d, stderr '%s'", r.status, r.err);
	tu_result_free(&r);
	assert_false(tu_exists(p1));
	assert_false(tu_exists(p2));
	assert_false(tu_exists(p3));
	free(check_one_run(out));
	tu_rmtree(out);
	free(p1);
	free(p2);
	free(p3);
	free(out);
}

/* ---- report and run ids ---------------------------------------------------------------------- */

static void copy_file(const char *from, const char *to)
{
	size_t n = 0;
	char *b = read_bin(from, &n);
	FILE *f;

	assert_non_null(b);
	f = fopen(to, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
	free(b);
}

/* Writes d/name without its "run" object. */
static void strip_run(const char *d, const char *name)
{
	json_t *j = load_json(d, name);
	char *p = tu_path(d, name);

	assert_non_null(j);
	if (strcmp(name, "estimate.json") == 0)
		json_object_del(j, "run");
	else
		json_object_del(json_object_get(j, "run"), "id");
	assert_int_equal(json_dump_file(j, p, JSON_INDENT(1)), 0);
	json_decref(j);
	free(p);
}

static void test_report_refuses_mixed_runs(void **state)
{
	char *a = tu_path(dir, "runa"), *b = tu_path(dir, "runb"), *mix = tu_path(dir, "mix"), *p, *q;
	tu_result r;

	(void)state;
	r = tu_run("run", "--base-path", base, "--snap", "99", "--out", a, "--halos", "2", NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	r = tu_run("run", "--base-path", base, "--snap", "99", "--out", b, "--halos", "3", NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);

	/* estimate.json of one run, memory.json of the other */
	copy_run(a, mix);
	p = tu_path(b, "memory.json");
	q = tu_path(mix, "memory.json");
	copy_file(p, q);
	r = tu_run("report", mix, NULL);
	expect_refused(&r, "estimate.json", "memory.json", "come from different runs", NULL);
	r = tu_run("report", mix, "--format", "json", NULL);
	expect_refused(&r, "come from different runs", NULL);
	free(p);
	free(q);

	/* one with a run id, the other without */
	copy_run(a, mix);
	strip_run(mix, "estimate.json");
	r = tu_run("report", mix, NULL);
	expect_refused(&r, "come from different runs", "without id", NULL);

	/* neither (a directory written before run ids): read as before */
	strip_run(mix, "memory.json");
	r = tu_run("report", mix, NULL);
	assert_int_equal(r.status, 0);
	assert_null(strstr(r.out, "run id"));
	tu_result_free(&r);

	/* --tradeoff reads profiles.hdf5 too: one of another run is refused */
	{
		char *f64 = tu_path(dir, "run64"), *mix64 = tu_path(dir, "mix64");

		r = tu_run("run", "--base-path", base, "--snap", "99", "--out", f64, "--halos",
			   "2", "--positions", "float64", NULL);
		assert_int_equal(r.status, 0);
		tu_result_free(&r);
		r = tu_run("report", "--tradeoff", a, f64, NULL);
		assert_true(r.status == 0 || r.status == 1);
		tu_result_free(&r);
		copy_run(f64, mix64);
		p = tu_path(b, "profiles.hdf5");
		q = tu_path(mix64, "profiles.hdf5");
		copy_file(p, q);
		r = tu_run("report", "--tradeoff", a, mix64, NULL);
		expect_refused(&r, "profiles.hdf5", "come from different runs", NULL);
		free(p);
		free(q);
		tu_rmtree(f64);
		tu_rmtree(mix64);
		free(f64);
		free(mix64);
	}
	tu_rmtree(a);
	tu_rmtree(b);
	tu_rmtree(mix);
	free(a);
	free(b);
	free(mix);
}

/* The mock's chunk files go through the same writer: a FIFO in place of a chunk is refused. */
static void test_mock_special_target(void **state)
{
	char *m = tu_path(dir, "mock-fifo"), *sd = tu_path(m, "snapdir_099"),
	     *fifo = tu_path(sd, "snap_099.1.hdf5");
	struct stat st;
	tu_result r;

	(void)state;
	assert_int_equal(mkdir(m, 0755), 0);
	assert_int_equal(mkdir(sd, 0755), 0);
	assert_int_equal(mkfifo(fifo, 0644), 0);
	r = tu_run("mock", m, "--gas", "20000", "--halos", "2", "--files", "2", NULL);
	expect_refused(&r, fifo, "is a FIFO", NULL);
	assert_int_equal(lstat(fifo, &st), 0);
	assert_true(S_ISFIFO(st.st_mode));
	assert_int_equal(hidden_entries(sd), 0);
	tu_rmtree(m);
	free(m);
	free(sd);
	free(fifo);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_writer_targets),
		cmocka_unit_test(test_writer_inputs_and_stale),
		cmocka_unit_test(test_sync_later),
		cmocka_unit_test(test_o_special_files),
		cmocka_unit_test(test_o_own_input),
		cmocka_unit_test(test_concurrent_runs),
		cmocka_unit_test(test_lock_holder_named),
		cmocka_unit_test(test_failure_keeps_earlier_run),
		cmocka_unit_test(test_signal_keeps_earlier_run),
		cmocka_unit_test(test_sigkill_leftovers),
		cmocka_unit_test(test_report_refuses_mixed_runs),
		cmocka_unit_test(test_mock_special_target),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
