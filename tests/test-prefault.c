/*
 * The first touch of a large array (src/pipeline/run.c, sm__pl_prefault) called directly: every
 * page inside the array is mapped in (mincore) whether the huge pages come quickly or not; a
 * 2 MiB step slower than sm__pl_huge_slow_s turns the huge-page hint off for the rest of the
 * array and for the run's later arrays (struct run's huge_slow), a quick one leaves it on;
 * SNAPMEM_HUGEPAGES=0 never asks; arrays below the threshold and NULL are left alone (so is
 * every array with one worker thread, where the fill faults the pages in as fast). The huge pages themselves are the kernel's to give (or not, with transparent huge pages
 * off), so only what the function decides is checked, never whether a 2 MiB page came.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "pipeline/run.h"

#define BYTES (UINT64_C(24) << 20) /* above PREFAULT_MIN_BYTES (8 MiB), 12 huge-page steps */

/* A fresh anonymous mapping of n bytes, none of it mapped in yet. */
static unsigned char *fresh(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	assert_true(p != MAP_FAILED);
	return p;
}

/* How many of the pages of [p, p + n) are resident. */
static size_t resident_pages(const unsigned char *p, size_t n)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE), np = n / pg, i, r = 0;
	unsigned char *v = malloc(np);

	assert_non_null(v);
	assert_int_equal(mincore((void *)p, n, v), 0);
	for (i = 0; i < np; i++)
		r += v[i] & 1;
	free(v);
	return r;
}

/* Whether this kernel takes the huge-page hint (madvise accepts it): the slow-step rule applies
 * only then. */
static int hint_taken(void)
{
	unsigned char *p = fresh(UINT64_C(4) << 20);
	int ok = madvise(p, UINT64_C(4) << 20, MADV_HUGEPAGE) == 0;

	munmap(p, UINT64_C(4) << 20);
	return ok;
}

static int setup(void **state)
{
	(void)state;
	setenv("SNAPMEM_THREADS", "2", 1);
	unsetenv("SNAPMEM_HUGEPAGES");
	return 0;
}

static void test_quick_steps_keep_the_hint(void **state)
{
	struct run R;
	unsigned char *p = fresh(BYTES);
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);

	(void)state;
	memset(&R, 0, sizeof(R));
	sm__pl_huge_slow_s = 1e9; /* no step is slow */
	sm__pl_prefault(&R, p, BYTES);
	assert_int_equal(R.huge_slow, 0);
	assert_int_equal(resident_pages(p, BYTES), BYTES / pg);
	munmap(p, BYTES);
}

static void test_a_slow_step_turns_the_hint_off(void **state)
{
	struct run R;
	unsigned char *p = fresh(BYTES), *q = fresh(BYTES);
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);

	(void)state;
	memset(&R, 0, sizeof(R));
	sm__pl_huge_slow_s = 0; /* every step is slow */
	sm__pl_prefault(&R, p, BYTES);
	assert_int_equal(R.huge_slow, hint_taken());
	/* every page mapped in all the same, the rest of the array in 4 KiB pages */
	assert_int_equal(resident_pages(p, BYTES), BYTES / pg);
	/* the next array of the run: no hint, no timing, every page */
	sm__pl_prefault(&R, q, BYTES);
	assert_int_equal(resident_pages(q, BYTES), BYTES / pg);
	/* an array not on a page boundary: the whole pages inside it */
	memset(&R, 0, sizeof(R));
	munmap(p, BYTES);
	p = fresh(BYTES);
	sm__pl_prefault(&R, p + 100, BYTES - 200);
	assert_int_equal(resident_pages(p + pg, BYTES - 2 * pg), BYTES / pg - 2);
	sm__pl_huge_slow_s = 5e-3;
	munmap(p, BYTES);
	munmap(q, BYTES);
}

static void test_no_hint_asked(void **state)
{
	struct run R;
	unsigned char *p = fresh(BYTES);
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);

	(void)state;
	memset(&R, 0, sizeof(R));
	setenv("SNAPMEM_HUGEPAGES", "0", 1);
	sm__pl_huge_slow_s = 0; /* would be slow, but no huge page is asked for: nothing to time */
	sm__pl_prefault(&R, p, BYTES);
	unsetenv("SNAPMEM_HUGEPAGES");
	sm__pl_huge_slow_s = 5e-3;
	assert_int_equal(R.huge_slow, 0);
	assert_int_equal(resident_pages(p, BYTES), BYTES / pg);
	munmap(p, BYTES);
}

static void test_left_alone(void **state)
{
	struct run R;
	const size_t small = UINT64_C(4) << 20;
	unsigned char *p = fresh(small);

	(void)state;
	memset(&R, 0, sizeof(R));
	sm__pl_prefault(&R, p, small); /* below the threshold: faults in as it is filled */
	assert_int_equal(resident_pages(p, small), 0);
	sm__pl_prefault(&R, NULL, BYTES);
	assert_int_equal(R.huge_slow, 0);
	munmap(p, small);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quick_steps_keep_the_hint),
		cmocka_unit_test(test_a_slow_step_turns_the_hint_off),
		cmocka_unit_test(test_no_hint_asked),
		cmocka_unit_test(test_left_alone),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
