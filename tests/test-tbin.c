/*
 * The histogram's log10 T bin by table (src/pipeline/run.h, sm__pl_tbin_fast: one load a cell
 * from the per-key entries sm__pl_tbin_table_init makes, the two-threshold table and log10 near
 * the thresholds) against the definition (sm__pl_tbin_exact, floor((log10 T - 3) * 10) clamped):
 * every float pattern within a few guard widths of each threshold and of each key range's ends,
 * where the entries' rules change, and a sweep over all non-negative patterns at a stride prime
 * to the key width; and the special values (zero, denormals, the largest float, infinity, NaN,
 * negative values). Then thresholds placed where the per-key entries' rules change, against the
 * two-threshold table (sm__pl_tbin_table) the entries shortcut.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pipeline/run.h"

#define AROUND (3u * TBIN_GUARD) /* patterns checked either side of each edge */

static struct tbin_table tt;

static int setup(void **state)
{
	(void)state;
	sm__pl_tbin_table_init(&tt);
	return 0;
}

/* Patterns [c - AROUND, c + AROUND] within the non-negative floats up to infinity: fast equals
 * exact; returns how many were checked. */
static uint64_t check_around(uint64_t c)
{
	uint64_t u = c > AROUND ? c - AROUND : 0, end = c + AROUND, n = 0;

	for (; u <= end && u <= TBIN_INF_BITS; u++, n++) {
		const float f = sm__pl_bits_float((uint32_t)u);

		if (sm__pl_tbin_fast(&tt, f) != sm__pl_tbin_exact(f))
			fail_msg("pattern 0x%08llx (%.9g): fast %d, exact %d", (unsigned long long)u,
				 (double)f, sm__pl_tbin_fast(&tt, f), sm__pl_tbin_exact(f));
	}
	return n;
}

static void test_thresholds(void **state)
{
	uint64_t n = 0;
	int b;

	(void)state;
	for (b = 1; b < SM_MODEL_TBINS; b++) {
		/* th[b] is the first pattern of bin b */
		assert_int_equal(sm__pl_tbin_exact(sm__pl_bits_float(tt.th[b])), b);
		assert_int_equal(sm__pl_tbin_exact(sm__pl_bits_float(tt.th[b] - 1)), b - 1);
		n += check_around(tt.th[b]);
	}
	assert_true(n > (SM_MODEL_TBINS - 1) * AROUND);
}

static void test_key_edges(void **state)
{
	uint64_t key, n = 0;

	(void)state;
	for (key = 0; key <= TBIN_INF_BITS >> TBIN_SHIFT; key++)
		n += check_around(key << TBIN_SHIFT);
	assert_true(n > 4000u * AROUND);
}

static void test_sweep(void **state)
{
	uint64_t u, n = 0;

	(void)state;
	for (u = 0; u <= TBIN_INF_BITS; u += 4099u, n++) {
		const float f = sm__pl_bits_float((uint32_t)u);

		if (sm__pl_tbin_fast(&tt, f) != sm__pl_tbin_exact(f))
			fail_msg("pattern 0x%08llx (%.9g): fast %d, exact %d", (unsigned long long)u,
				 (double)f, sm__pl_tbin_fast(&tt, f), sm__pl_tbin_exact(f));
	}
	assert_true(n > 500000u);
}

static void test_special(void **state)
{
	const float v[] = {0.0f, -0.0f, 1e-45f, 1e-38f, 1.0f, 999.999f, 1000.0f, 1e9f, 3.4e38f,
			   INFINITY, -1.0f, -INFINITY, NAN, -NAN};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		assert_int_equal(sm__pl_tbin_fast(&tt, v[i]), sm__pl_tbin_exact(v[i]));
	assert_int_equal(sm__pl_tbin_fast(&tt, 0.0f), 0);
	assert_int_equal(sm__pl_tbin_fast(&tt, INFINITY), SM_MODEL_TBINS - 1);
	assert_int_equal(sm__pl_tbin_fast(&tt, 1e9f), SM_MODEL_TBINS - 1);
	assert_int_equal(sm__pl_tbin_fast(&tt, 1e4f), 10);
}

/* Thresholds placed where the per-key entries' rules change (sm__pl_tbin_table_keys on a
 * synthetic th): on a key's first pattern, within and just past a guard width of a key's start
 * or end, two thresholds a few patterns either side of a key boundary, mid-key; the fast bin
 * must be the two-threshold table's for every pattern around each of them and each key edge
 * (both take log10 in the same guard zones, whatever the thresholds). */
static void test_synthetic_edges(void **state)
{
	const uint64_t K = UINT64_C(1) << TBIN_SHIFT;
	const uint64_t at[] = {10 * K, 20 * K + 30, 30 * K + 64, 40 * K + 65, 51 * K - 1,
			       51 * K + 10, 60 * K - 64, 61 * K + 63, 70 * K + K / 2, 80 * K - 65,
			       90 * K - 66, 90 * K + 64, 95 * K - 200, 95 * K + 10, 97 * K - 300,
			       97 * K + 63, 110 * K - 63, 120 * K - 64};
	const size_t nat = sizeof(at) / sizeof(at[0]);
	struct tbin_table syn;
	uint64_t key, n = 0;
	size_t b;

	(void)state;
	memset(&syn, 0, sizeof(syn));
	for (b = 1; b < SM_MODEL_TBINS; b++)
		syn.th[b] = (uint32_t)(b <= nat ? at[b - 1]
					      : (100 + 7 * b) * K + (b * 12345u) % K);
	syn.th[SM_MODEL_TBINS] = UINT32_MAX;
	sm__pl_tbin_table_keys(&syn);
	for (key = 0; key < 600; key++) {
		const uint64_t c = key * K;
		uint64_t u = c > AROUND ? c - AROUND : 0;

		for (; u <= c + AROUND; u++, n++) {
			const float f = sm__pl_bits_float((uint32_t)u);

			if (sm__pl_tbin_fast(&syn, f) != sm__pl_tbin_table(&syn, f))
				fail_msg("key edge, pattern 0x%08llx: fast %d, table %d",
					 (unsigned long long)u, sm__pl_tbin_fast(&syn, f),
					 sm__pl_tbin_table(&syn, f));
		}
	}
	for (b = 1; b < SM_MODEL_TBINS; b++) {
		uint64_t u;

		for (u = syn.th[b] - AROUND; u <= syn.th[b] + AROUND; u++, n++) {
			const float f = sm__pl_bits_float((uint32_t)u);

			if (sm__pl_tbin_fast(&syn, f) != sm__pl_tbin_table(&syn, f))
				fail_msg("threshold %zu, pattern 0x%08llx: fast %d, table %d", b,
					 (unsigned long long)u, sm__pl_tbin_fast(&syn, f),
					 sm__pl_tbin_table(&syn, f));
		}
	}
	assert_true(n > 600u * AROUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_thresholds),
		cmocka_unit_test(test_key_edges),
		cmocka_unit_test(test_sweep),
		cmocka_unit_test(test_special),
		cmocka_unit_test(test_synthetic_edges),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
