/*
 * Helpers shared by the cmocka tests: a private temporary directory per test, running the snapmem
 * binary and capturing its exit status and output, and locating the real data files. Tests write
 * only under the directory returned by tu_tmpdir().
 */
#ifndef SNAPMEM_TESTS_UTIL_H
#define SNAPMEM_TESTS_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* A fresh directory under $TMPDIR (made by tests/run.sh per binary); removed by tu_rmtree. */
char *tu_tmpdir(void);

/* rm -rf path (only under $TMPDIR or /tmp: anything else aborts the test). */
void tu_rmtree(const char *path);

/* Joins a and b with '/' into a static-free malloc'd string. */
char *tu_path(const char *a, const char *b);

typedef struct tu_result {
	int status;     /* exit status, or 128 + signal when killed by one */
	char *out;      /* stdout, NUL-terminated */
	char *err;      /* stderr, NUL-terminated */
} tu_result;

/*
 * Runs $SNAPMEM_BIN with the NULL-terminated argument list (argv[0] not included) and captures.
 * Fails the test when the binary cannot be started.
 */
tu_result tu_run(const char *arg, ...);
tu_result tu_runv(char *const argv[]);
/* tu_runv with a deadline: the child is killed by SIGALRM (status 142) after seconds (0: none). */
tu_result tu_runv_timeout(char *const argv[], unsigned seconds);
/* Reads fd from its current offset to the end into a malloc'd NUL-terminated string. */
char *tu_slurp_fd(int fd);
void tu_result_free(tu_result *r);

/* vasprintf into a malloc'd string; fails the test when out of memory. */
char *tu_fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));

/* Entries of dir other than . and .. (hidden ones included); -1 when it cannot be opened. */
int tu_entries(const char *dir);

/* Soft failures: a failed case is printed ("  FAIL what: ...") and counted, and the test goes on,
 * so one run lists every failing case; tu_soft_done(what) then fails the test if any was counted. */
void tu_soft_fail(const char *what, const char *f, ...) __attribute__((format(printf, 2, 3)));
void tu_soft_done(const char *what);

/* Number of lines in s (a final line without newline counts). */
int tu_count_lines(const char *s);

/* $SNAPMEM_REAL_DATA/name (tests/data: copies of real files, provenance in tests/data/README.md); fails the test when absent. */
char *tu_real_data(const char *name);

/* 1 when the tests run under sanitizers (no jemalloc): measurement tests skip themselves. */
int tu_sanitized(void);

/* Reads a whole file into a malloc'd NUL-terminated buffer; NULL when it cannot be read. */
char *tu_read_file(const char *path, size_t *len);

/* 1 when path exists. */
int tu_exists(const char *path);

/* A run's profiles.hdf5, read back (util-profiles.c): K halos, per halo RBINS counts etc. */
typedef struct tu_profiles {
	int64_t *group;
	double *center, *r200, *m200, *mean;
	int64_t *counts, *sf, *h2;
	uint64_t k;
} tu_profiles;

/* Reads every per-halo dataset of profiles.hdf5 at path; fails the test on a bad file. */
void tu_profiles_read(const char *path, tu_profiles *po);
void tu_profiles_free(tu_profiles *po);

#endif
