/*
 * Shared test helpers: temporary directories, running the CLI with captured output, locating the
 * real data. See tests/util.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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

#include "util.h"

char *tu_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *tmpl;

	if (base == NULL || *base == '\0')
		base = "/tmp";
	tmpl = tu_path(base, "t.XXXXXX");
	if (mkdtemp(tmpl) == NULL)
		fail_msg("mkdtemp under %s: %s", base, strerror(errno));
	return tmpl;
}

void tu_rmtree(const char *path)
{
	const char *base = getenv("TMPDIR");
	char cmd[8192];

	if (path == NULL)
		return;
	if (strncmp(path, "/tmp/", 5) != 0 &&
	    (base == NULL || strncmp(path, base, strlen(base)) != 0))
		fail_msg("refusing to remove '%s' outside the temporary directory", path);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd) != 0)
		fail_msg("cannot remove '%s'", path);
}

char *tu_path(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *p = malloc(n);

	assert_non_null(p);
	snprintf(p, n, "%s/%s", a, b);
	return p;
}

char *tu_slurp_fd(int fd)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	ssize_t n;

	assert_non_null(buf);
	for (;;) {
		if (len + 1 >= cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return buf;
}

tu_result tu_runv_timeout(char *const argv[], unsigned seconds)
{
	tu_result r = {0};
	const char *bin = getenv("SNAPMEM_BIN");
	char errpath[] = "/tmp/snapmem-tu-err.XXXXXX";
	int outp[2], errfd, status;
	pid_t pid;
	char **full;
	size_t n = 0;

	if (bin == NULL)
		fail_msg("SNAPMEM_BIN is not set (run the tests through make check)");
	while (argv[n] != NULL)
		n++;
	full = calloc(n + 2, sizeof(*full));
	assert_non_null(full);
	full[0] = (char *)bin;
	memcpy(full + 1, argv, n * sizeof(*full));
	assert_int_equal(pipe(outp), 0);
	errfd = mkstemp(errpath);
	assert_true(errfd >= 0);
	unlink(errpath);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(outp[1], 1);
		dup2(errfd, 2);
		close(outp[0]);
		close(outp[1]);
		if (seconds > 0)
			alarm(seconds); /* survives exec: a command blocked forever dies with SIGALRM */
		execv(bin, full);
		_exit(127);
	}
	close(outp[1]);
	r.out = tu_slurp_fd(outp[0]);
	close(outp[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	lseek(errfd, 0, SEEK_SET);
	r.err = tu_slurp_fd(errfd);
	close(errfd);
	free(full);
	r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	return r;
}

tu_result tu_runv(char *const argv[])
{
	return tu_runv_timeout(argv, 0);
}

char *tu_fmt(const char *f, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, f);
	if (vasprintf(&s, f, ap) < 0)
		s = NULL;
	va_end(ap);
	assert_non_null(s);
	return s;
}

int tu_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) /* hidden temporaries count */
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static int soft_failures;

void tu_soft_fail(const char *what, const char *f, ...)
{
	va_list ap;

	printf("  FAIL %s: ", what);
	va_start(ap, f);
	vprintf(f, ap);
	va_end(ap);
	printf("\n");
	soft_failures++;
}

void tu_soft_done(const char *what)
{
	int n = soft_failures;

	soft_failures = 0;
	if (n != 0)
		fail_msg("%d %s checks failed (listed above)", n, what);
}

tu_result tu_run(const char *arg, ...)
{
	char *argv[128];
	size_t n = 0;
	va_list ap;
	const char *a;

	va_start(ap, arg);
	for (a = arg; a != NULL && n < 127; a = va_arg(ap, const char *))
		argv[n++] = (char *)a;
	va_end(ap);
	argv[n] = NULL;
	return tu_runv(argv);
}

void tu_result_free(tu_result *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

int tu_count_lines(const char *s)
{
	int n = 0;

	for (; *s != '\0'; s++)
		if (*s == '\n')
			n++;
	if (s > (const char *)0 && *s == '\0' && n == 0)
		return 0;
	return n;
}

char *tu_real_data(const char *name)
{
	const char *dir = getenv("SNAPMEM_REAL_DATA");
	char *p;

	if (dir == NULL)
		fail_msg("SNAPMEM_REAL_DATA is not set (run the tests through make check)");
	p = tu_path(dir, name);
	if (access(p, R_OK) != 0)
		fail_msg("real data file '%s' is missing", p);
	return p;
}

int tu_sanitized(void)
{
	const char *s = getenv("SNAPMEM_SANITIZE");

	return s != NULL && strcmp(s, "1") == 0;
}

char *tu_read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	char *buf;

	if (fd < 0)
		return NULL;
	buf = tu_slurp_fd(fd);
	close(fd);
	if (len != NULL)
		*len = strlen(buf);
	return buf;
}

int tu_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}
