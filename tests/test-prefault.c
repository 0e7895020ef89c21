/*
 * The first touch of a fresh array (src/pipeline/run.c, sm__pl_prefault) called directly: every
 * whole page inside the array is mapped in (mincore) whether the huge pages come quickly or not,
 * and nothing outside it; a 2 MiB step slower than sm__pl_huge_slow_s and than twice the 512
 * faults of 4 KiB it replaces (sm__pl_fault_4k_ns, measured on the first step above the floor)
 * turns the huge-page hint off for the rest of the array and for the run's later arrays (struct
 * run's huge_slow), a quick one leaves it on; SNAPMEM_HUGEPAGES=0 never asks; arrays below 2 MiB
 * take 4 KiB pages, never timed, those below 256 KiB on the calling thread; an array with no whole page, and NULL, are
 * left alone. The huge pages themselves are the kernel's to give (or not, with transparent huge
 * pages off), so only what the function decides is checked, never whether a 2 MiB page came.
 * With the hint, a 4 KiB tail of 1 MiB or more beyond the last whole 2 MiB of an array on a 2 MiB
 * boundary is mapped in up to the next 2 MiB when the allocation owns that much
 * (sm_model_huge_extent), and handed back without the hint when the array is freed.
 */
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "pipeline/run.h"

#define BYTES (UINT64_C(24) << 20) /* above HUGE_MIN_BYTES (2 MiB), 12 huge-page steps */

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

/* The VmFlags line of the mapping that holds p (/proc/self/smaps), into buf. */
static void vm_flags(const void *p, char *buf, size_t len)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	int in = 0;

	assert_non_null(f);
	buf[0] = '\0';
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long lo, hi;
		char dash;

		if (sscanf(line, "%lx%c%lx ", &lo, &dash, &hi) == 3 && dash == '-')
			in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
		else if (in && strncmp(line, "VmFlags:", 8) == 0)
			snprintf(buf, len, "%s", line + 8);
	}
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	setenv("SNAPMEM_THREADS", "2", 1);
	unsetenv("SNAPMEM_HUGEPAGES");
	return 0;
}

/* Each test's run (fresh), a fresh BYTES array, the page size and the threshold to restore. */
struct fixture {
	struct run R;
	unsigned char *p;
	size_t pg;
	double slow_s;
	uint64_t fault_ns;
};

static int fixture_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->p = fresh(BYTES);
	f->pg = (size_t)sysconf(_SC_PAGESIZE);
	f->slow_s = sm__pl_huge_slow_s;
	f->fault_ns = atomic_load(&sm__pl_fault_4k_ns);
	*state = f;
	return 0;
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;

	sm__pl_huge_slow_s = f->slow_s;
	atomic_store(&sm__pl_fault_4k_ns, f->fault_ns);
	munmap(f->p, BYTES);
	free(f);
	return 0;
}

static void test_quick_steps_keep_the_hint(void **state)
{
	struct fixture *f = *state;

	sm__pl_huge_slow_s = 1e9; /* no step is slow */
	sm__pl_prefault(&f->R, f->p, BYTES, 0);
	assert_int_equal(f->R.huge_slow, 0);
	assert_int_equal(resident_pages(f->p, BYTES), BYTES / f->pg);
}

static void test_a_slow_step_turns_the_hint_off(void **state)
{
	struct fixture *f = *state;
	unsigned char *q = fresh(BYTES), *u = fresh(BYTES);

	sm__pl_huge_slow_s = 0; /* every step is slow: above the floor ... */
	atomic_store(&sm__pl_fault_4k_ns, 1); /* ... and above 1,024 faults of 1 ns */
	sm__pl_prefault(&f->R, f->p, BYTES, 0);
	assert_int_equal(f->R.huge_slow, hint_taken());
	/* every page mapped in all the same, the rest of the array in 4 KiB pages */
	assert_int_equal(resident_pages(f->p, BYTES), BYTES / f->pg);
	/* the next array of the run: no hint, no timing, every page */
	sm__pl_prefault(&f->R, q, BYTES, 0);
	assert_int_equal(resident_pages(q, BYTES), BYTES / f->pg);
	/* an array not on a page boundary, in a new run: the whole pages inside it */
	memset(&f->R, 0, sizeof(f->R));
	sm__pl_prefault(&f->R, u + 100, BYTES - 200, 0);
	assert_int_equal(resident_pages(u + f->pg, BYTES - 2 * f->pg), BYTES / f->pg - 2);
	munmap(q, BYTES);
	munmap(u, BYTES);
}

/* A step above the floor but quicker than the 4 KiB faults it replaces keeps the hint: here
 * every step is above the floor, and a 4 KiB fault is taken to cost a second. */
static void test_step_quicker_than_its_small_pages(void **state)
{
	struct fixture *f = *state;

	sm__pl_huge_slow_s = 0;
	atomic_store(&sm__pl_fault_4k_ns, UINT64_C(1000000000));
	sm__pl_prefault(&f->R, f->p, BYTES, 0);
	assert_int_equal(f->R.huge_slow, 0);
	assert_int_equal(resident_pages(f->p, BYTES), BYTES / f->pg);
}

/* The 4 KiB fault is measured the first time a step is above the floor (never before), once. */
static void test_fault_measured_when_needed(void **state)
{
	struct fixture *f = *state;
	unsigned char *q = fresh(BYTES);
	uint64_t ns;

	atomic_store(&sm__pl_fault_4k_ns, 0);
	sm__pl_huge_slow_s = 1e9; /* no step above the floor: nothing measured */
	sm__pl_prefault(&f->R, f->p, BYTES, 0);
	assert_int_equal(atomic_load(&sm__pl_fault_4k_ns), 0);
	sm__pl_huge_slow_s = 0; /* every step above it: measured when a huge page was asked for */
	sm__pl_prefault(&f->R, q, BYTES, 0);
	ns = atomic_load(&sm__pl_fault_4k_ns);
	if (hint_taken())
		assert_true(ns > 0);
	else
		assert_int_equal(ns, 0);
	assert_int_equal(resident_pages(q, BYTES), BYTES / f->pg);
	munmap(q, BYTES);
}

static void test_no_hint_asked(void **state)
{
	struct fixture *f = *state;

	setenv("SNAPMEM_HUGEPAGES", "0", 1);
	sm__pl_huge_slow_s = 0; /* would be slow, but no huge page is asked for: nothing to time */
	sm__pl_prefault(&f->R, f->p, BYTES, 0);
	unsetenv("SNAPMEM_HUGEPAGES");
	assert_int_equal(f->R.huge_slow, 0);
	assert_int_equal(resident_pages(f->p, BYTES), BYTES / f->pg);
}

static void test_smaller_arrays(void **state)
{
	struct fixture *f = *state;
	const size_t small = UINT64_C(1536) << 10, tiny = UINT64_C(100) << 10;

	sm__pl_huge_slow_s = 0; /* would be slow, but no huge page is asked for: nothing to time */
	/* below HUGE_MIN_BYTES (the first 1.5 MiB of the array): 4 KiB pages, on the worker threads */
	sm__pl_prefault(&f->R, f->p, small, 0);
	assert_int_equal(resident_pages(f->p, small), small / f->pg);
	assert_int_equal(f->R.huge_slow, 0);
	/* below PARALLEL_MIN_BYTES (100 KiB further on): on the calling thread, the whole pages */
	sm__pl_prefault(&f->R, f->p + small + 100, tiny, 0);
	assert_int_equal(resident_pages(f->p + small, f->pg), 0);
	assert_int_equal(resident_pages(f->p + small + f->pg, tiny - f->pg), tiny / f->pg - 1);
	/* no whole page inside the array, and NULL: left alone */
	sm__pl_prefault(&f->R, f->p + small + 2 * tiny + 8, f->pg - 16, 0);
	assert_int_equal(resident_pages(f->p + small + 2 * tiny, f->pg), 0);
	sm__pl_prefault(&f->R, NULL, BYTES, 0);
	assert_int_equal(resident_pages(f->p + BYTES - small, small), 0);
	assert_int_equal(f->R.huge_slow, 0);
}

#define MIB (UINT64_C(1) << 20)

/* A fresh mapping of n bytes starting on a 2 MiB boundary (*base, *len: what to unmap). */
static unsigned char *fresh_aligned(size_t n, unsigned char **base, size_t *len)
{
	*len = n + 2 * MIB;
	*base = fresh(*len);
	return *base + (2 * MIB - (uintptr_t)*base % (2 * MIB)) % (2 * MIB);
}

/* The tail rule, sm_model_huge_extent: from 2 MiB, a tail of 1 MiB or more rounded up to the next
 * 2 MiB when the size class reaches it. */
static void test_huge_extent_rule(void **state)
{
	(void)state;
	assert_int_equal(sm_model_huge_extent(3 * MIB + MIB / 2, 4 * MIB), 4 * MIB);
	assert_int_equal(sm_model_huge_extent(4000000, 4194304), 4194304);
	assert_int_equal(sm_model_huge_extent(3 * MIB, 4 * MIB), 4 * MIB);    /* tail 1 MiB */
	assert_int_equal(sm_model_huge_extent(3 * MIB - 1, 4 * MIB), 3 * MIB - 1); /* shorter */
	assert_int_equal(sm_model_huge_extent(4 * MIB, 8 * MIB), 4 * MIB);    /* no tail */
	assert_int_equal(sm_model_huge_extent(3 * MIB + MIB / 2, 4 * MIB - 1), 3 * MIB + MIB / 2);
	assert_int_equal(sm_model_huge_extent(MIB + MIB / 2, 2 * MIB), MIB + MIB / 2); /* < 2 MiB */
	assert_int_equal(sm_model_huge_extent(3 * MIB + MIB / 2, 0), 3 * MIB + MIB / 2);
	assert_int_equal(sm_model_huge_extent(UINT64_MAX - 5, UINT64_MAX), UINT64_MAX - 5);
}

/* A 3.5 MiB array owning 4 MiB: with the hint its last 0.5 MiB past the end is mapped in too (the
 * return says 4 MiB are hinted); without it (SNAPMEM_HUGEPAGES=0, a kernel that refuses the
 * hint), owning less, or a tail under 1 MiB, nothing beyond the array is. */
static void test_tail_rounded_to_a_huge_page(void **state)
{
	struct fixture *f = *state;
	unsigned char *base, *a;
	size_t len;
	const uint64_t n = 3 * MIB + MIB / 2;
	uint64_t h;

	sm__pl_huge_slow_s = 1e9;
	a = fresh_aligned(8 * MIB, &base, &len);
	h = sm__pl_prefault(&f->R, a, n, 4 * MIB);
	assert_int_equal(resident_pages(a, n), n / f->pg);
	assert_int_equal(h, hint_taken() ? 4 * MIB : 0);
	assert_int_equal(resident_pages(a + n, 4 * MIB - n), h ? (4 * MIB - n) / f->pg : 0);
	assert_int_equal(resident_pages(a + 4 * MIB, 4 * MIB), 0);
	munmap(base, len);

	setenv("SNAPMEM_HUGEPAGES", "0", 1);
	a = fresh_aligned(8 * MIB, &base, &len);
	assert_int_equal(sm__pl_prefault(&f->R, a, n, 4 * MIB), 0);
	unsetenv("SNAPMEM_HUGEPAGES");
	assert_int_equal(resident_pages(a, 8 * MIB), n / f->pg);
	munmap(base, len);

	a = fresh_aligned(8 * MIB, &base, &len); /* owning less than the next 2 MiB */
	h = sm__pl_prefault(&f->R, a, n, 4 * MIB - f->pg);
	assert_int_equal(h, hint_taken() ? n : 0);
	assert_int_equal(resident_pages(a, 8 * MIB), n / f->pg);
	munmap(base, len);

	a = fresh_aligned(8 * MIB, &base, &len); /* a tail of 0.5 MiB */
	h = sm__pl_prefault(&f->R, a, 2 * MIB + MIB / 2, 4 * MIB);
	assert_int_equal(h, hint_taken() ? 2 * MIB + MIB / 2 : 0);
	assert_int_equal(resident_pages(a, 8 * MIB), (2 * MIB + MIB / 2) / f->pg);
	munmap(base, len);
}

/* A tracked array of n bytes of the run (profiling off: 2 MiB-aligned all the same) filled next
 * (sm__pl_palloc_filled: mapped in, asked for huge pages, `hinted` bytes from its start) is handed
 * back without the hint over all of them when it is freed, so that a small array placed there
 * later does not take a whole 2 MiB page. */
static void freed_array_loses_the_hint(struct fixture *f, uint64_t n, uint64_t hinted)
{
	sm_pipeline_options o;
	sm_pipeline_result res;
	unsigned char *a = NULL, *keep;
	char flags[512];

	memset(&o, 0, sizeof(o));
	memset(&res, 0, sizeof(res));
	f->R.o = &o;
	f->R.r = &res;
	sm__pl_huge_slow_s = 1e9;
	assert_int_equal(sm__pl_palloc_filled(&f->R, &a, "a", n), 0);
	assert_int_equal((uintptr_t)a % (2 * MIB), 0);
	if (sm_prof_usable(NULL, a) < hinted) { /* an allocator without the room: no tail */
		assert_int_equal(f->R.live[0].hinted, n / f->pg * f->pg);
		sm__pl_pfree(&f->R, &a);
		skip();
	}
	assert_int_equal(f->R.live[0].hinted, hinted);
	assert_int_equal(resident_pages(a, hinted), hinted / f->pg);
	vm_flags(a + hinted - f->pg, flags, sizeof(flags));
	assert_non_null(strstr(flags, " hg"));
	keep = a;
	sm__pl_pfree(&f->R, &a);
	assert_null(a);
	assert_int_equal(f->R.nlive, 0);
	/* the range is still mapped (the allocator keeps it), now marked no-huge-page */
	vm_flags(keep + hinted - f->pg, flags, sizeof(flags));
	assert_null(strstr(flags, " hg"));
}

static void test_freed_array_loses_the_hint(void **state)
{
	if (!hint_taken())
		skip();
	freed_array_loses_the_hint(*state, BYTES, BYTES);
}

/* The same with a tail rounded to the next 2 MiB (the C library's malloc_usable_size: jemalloc's
 * where it is the process's malloc, whose class for 3.75 MiB is 4 MiB). */
static void test_freed_tail_loses_the_hint(void **state)
{
	if (!hint_taken())
		skip();
	freed_array_loses_the_hint(*state, 3 * MIB + 3 * MIB / 4, 4 * MIB);
}

#define FIXTURE_TEST(t) cmocka_unit_test_setup_teardown(t, fixture_setup, fixture_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		FIXTURE_TEST(test_quick_steps_keep_the_hint),
		FIXTURE_TEST(test_a_slow_step_turns_the_hint_off),
		FIXTURE_TEST(test_step_quicker_than_its_small_pages),
		FIXTURE_TEST(test_fault_measured_when_needed),
		FIXTURE_TEST(test_no_hint_asked),
		FIXTURE_TEST(test_smaller_arrays),
		FIXTURE_TEST(test_freed_array_loses_the_hint),
		cmocka_unit_test(test_huge_extent_rule),
		FIXTURE_TEST(test_tail_rounded_to_a_huge_page),
		FIXTURE_TEST(test_freed_tail_loses_the_hint),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
