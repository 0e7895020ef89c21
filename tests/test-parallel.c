/*
 * The library's worker threads (src/common/parallel.c): every part of every job runs exactly once
 * and before sm__parallel returns, over many jobs back to back (with sm__parallel_spin on, the
 * workers then catch the next job while spinning) and after pauses longer than the spin (they
 * sleep and are woken), with parts
 * fewer than, equal to and more than the pool's workers, a job started from inside a part (the
 * pool busy: short-lived threads), and in a forked child (the pool's threads are not there; the
 * library's cached process id, sm__pid, is the child's own).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/parallel.h"

#define MAXP SM__MAX_THREADS

struct job {
	atomic_uint runs[MAXP];  /* times each part ran */
	atomic_uint inner;       /* parts of nested jobs that ran */
	unsigned parts_seen[MAXP];
	int nest;
};

static void part_fn(void *arg, unsigned part, unsigned parts)
{
	struct job *J = arg;

	atomic_fetch_add(&J->runs[part], 1);
	J->parts_seen[part] = parts;
}

static void inner_fn(void *arg, unsigned part, unsigned parts)
{
	struct job *J = arg;

	(void)part;
	(void)parts;
	atomic_fetch_add(&J->inner, 1);
}

static void nesting_fn(void *arg, unsigned part, unsigned parts)
{
	struct job *J = arg;

	part_fn(arg, part, parts);
	sm__parallel(inner_fn, J, 2); /* the pool is busy: this one spawns */
}

/* One job of `parts` parts; every part ran once, and saw `parts`. */
static void one_job(unsigned parts)
{
	struct job J;
	unsigned p;

	memset(&J, 0, sizeof(J));
	sm__parallel(part_fn, &J, parts);
	for (p = 0; p < MAXP; p++) {
		assert_int_equal(atomic_load(&J.runs[p]), p < parts ? 1 : 0);
		if (p < parts)
			assert_int_equal(J.parts_seen[p], parts);
	}
}

static void test_back_to_back(void **state)
{
	unsigned i, spin;

	(void)state;
	for (spin = 0; spin < 2; spin++) {
		sm__parallel_spin((int)spin);
		for (i = 0; i < 4000; i++)
			one_job(1 + i % MAXP);
	}
	sm__parallel_spin(0);
}

static void test_after_pauses(void **state)
{
	const struct timespec pause = {0, 300 * 1000 * 1000 / 100}; /* 3 ms: past the spin */
	unsigned i;

	(void)state;
	for (i = 0; i < 40; i++) {
		one_job(2 + i % (MAXP - 1));
		nanosleep(&pause, NULL);
	}
}

static void test_nested(void **state)
{
	struct job J;
	unsigned p, parts = 3;

	(void)state;
	memset(&J, 0, sizeof(J));
	sm__parallel(nesting_fn, &J, parts);
	for (p = 0; p < parts; p++)
		assert_int_equal(atomic_load(&J.runs[p]), 1);
	assert_int_equal(atomic_load(&J.inner), 2 * parts);
	one_job(4); /* the pool still serves */
}

static void test_forked_child(void **state)
{
	pid_t pid;
	int status;

	(void)state;
	one_job(4); /* the pool started in the parent */
	assert_int_equal(sm__pid(), (int)getpid());
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct job J;
		unsigned p, ok = sm__pid() == (int)getpid(), i;

		for (i = 0; i < 50; i++) {
			memset(&J, 0, sizeof(J));
			sm__parallel(part_fn, &J, 4);
			for (p = 0; p < 4; p++)
				ok &= atomic_load(&J.runs[p]) == 1;
		}
		_exit(ok ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	one_job(4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_back_to_back),
		cmocka_unit_test(test_after_pauses),
		cmocka_unit_test(test_nested),
		cmocka_unit_test(test_forked_child),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
