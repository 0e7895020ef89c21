/*
 * The model contract (include/snapmem/model.h): its vocabularies, the one spelling and parse of
 * every option value, the halo order and mass cut, and the chunk assignment against an
 * independent reference (the plain O(F^2) rule of docs/MPI.md, written out here). The grid sides
 * are tested with the strategies that use them (test-pipeline.c, test-distributed.c,
 * test-estimator.c); scripts/contract-check.py keeps the contract's layering.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "snapmem/estimator.h"
#include "snapmem/model.h"
#include "snapmem/pipeline.h"

#include "util.h"

#define AS_ENTRY(name) name,

static void test_vocabularies(void **state)
{
	static const char *const stages[] = {SM_MODEL_STAGE_LIST(AS_ENTRY)};
	static const char *const arrays[] = {SM_MODEL_ARRAY_LIST(AS_ENTRY)};
	size_t i, j;

	(void)state;
	assert_int_equal(sizeof(stages) / sizeof(stages[0]), 10);
	assert_string_equal(stages[0], "load_halos");
	assert_string_equal(stages[8], "histogram_write");
	assert_string_equal(stages[9], "stream_cells");
	for (i = 0; i < sizeof(stages) / sizeof(stages[0]); i++) {
		assert_true(sm_model_stage_known(stages[i]));
		assert_false(sm_model_array_known(stages[i]));
		for (j = i + 1; j < sizeof(stages) / sizeof(stages[0]); j++)
			assert_string_not_equal(stages[i], stages[j]);
	}
	for (i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++) {
		assert_true(sm_model_array_known(arrays[i]));
		for (j = i + 1; j < sizeof(arrays) / sizeof(arrays[0]); j++)
			assert_string_not_equal(arrays[i], arrays[j]);
	}
	assert_false(sm_model_stage_known("load_halo"));
	assert_false(sm_model_stage_known(NULL));
	assert_false(sm_model_array_known("coordinates"));
	assert_false(sm_model_array_known(NULL));
	assert_true(sm_model_stage_per_halo("select_sphere"));
	assert_true(sm_model_stage_per_halo("histogram_write"));
	assert_false(sm_model_stage_per_halo("build_index"));
	assert_false(sm_model_stage_per_halo("stream_cells"));
	assert_false(sm_model_stage_per_halo(NULL));
	/* 8 (counts, sf_counts, sums: 50 each; hist2d 50 x 60) = 25,200 */
	assert_int_equal(SM_MODEL_HISTOGRAM_BYTES, 25200);
	assert_int_equal(SM_MODEL_IO_BUFFER_BYTES, 1048576);
}

static void test_values(void **state)
{
	sm_dtype t = SM_DTYPE_NONE;
	sm_select s = SM_SELECT_MASK;
	sm_temp_mode m = SM_TEMP_STREAMING;

	(void)state;
	assert_string_equal(sm_model_positions_name(SM_DTYPE_F32), "float32");
	assert_string_equal(sm_model_positions_name(SM_DTYPE_F64), "float64");
	assert_null(sm_model_positions_name(SM_DTYPE_U8));
	assert_string_equal(sm_model_positions_name(SM_DTYPE_F32), sm_dtype_name(SM_DTYPE_F32));
	assert_int_equal(sm_model_positions_parse("float64", &t), 0);
	assert_int_equal(t, SM_DTYPE_F64);
	/* an element type that is not a positions type, or no type at all: refused, t untouched */
	assert_int_equal(sm_model_positions_parse("uint64", &t), SM_EINVAL);
	assert_int_equal(sm_model_positions_parse("float16", &t), SM_EINVAL);
	assert_int_equal(sm_model_positions_parse("", &t), SM_EINVAL);
	assert_int_equal(sm_model_positions_parse(NULL, &t), SM_EINVAL);
	assert_int_equal(t, SM_DTYPE_F64);

	assert_string_equal(sm_model_select_name(SM_SELECT_INDEX), "index");
	assert_string_equal(sm_model_select_name(SM_SELECT_MASK), "mask");
	assert_null(sm_model_select_name((sm_select)7));
	assert_int_equal(sm_model_select_parse("index", &s), 0);
	assert_int_equal(s, SM_SELECT_INDEX);
	assert_int_equal(sm_model_select_parse("Index", &s), SM_EINVAL);
	assert_int_equal(sm_model_select_parse(NULL, &s), SM_EINVAL);
	assert_int_equal(s, SM_SELECT_INDEX);

	assert_string_equal(sm_model_temperature_name(SM_TEMP_IN_MEMORY), "in-memory");
	assert_string_equal(sm_model_temperature_name(SM_TEMP_STREAMING), "streaming");
	assert_null(sm_model_temperature_name((sm_temp_mode)7));
	assert_int_equal(sm_model_temperature_parse("in-memory", &m), 0);
	assert_int_equal(m, SM_TEMP_IN_MEMORY);
	assert_int_equal(sm_model_temperature_parse("in_memory", &m), SM_EINVAL);
	assert_int_equal(m, SM_TEMP_IN_MEMORY);

	/* the choices the command line lists are the same spellings */
	assert_string_equal(SM_MODEL_POSITIONS_CHOICES, "float32|float64");
	assert_string_equal(SM_MODEL_SELECT_CHOICES, "index|mask");
	assert_string_equal(SM_MODEL_TEMPERATURE_CHOICES, "in-memory|streaming");
}

/* Every value through sm_model_option_apply, and its errors, one line each. */
static void test_option_apply(void **state)
{
	sm_model_options o;
	sm_error err;

	(void)state;
	sm_model_options_init(&o);
	assert_int_equal(o.positions, SM_DTYPE_F32);
	assert_int_equal(o.stream_block, SM_MODEL_STREAM_BLOCK_DEFAULT);
	assert_true(o.mass_min == SM_MODEL_MASS_MIN_DEFAULT);
	assert_int_equal(sm_model_option_apply(&o, "--positions", "float64", &err), 1);
	assert_int_equal(o.positions, SM_DTYPE_F64);
	assert_int_equal(sm_model_option_apply(&o, "--select", "mask", &err), 1);
	assert_int_equal(o.select, SM_SELECT_MASK);
	assert_int_equal(sm_model_option_apply(&o, "--temperature", "streaming", &err), 1);
	assert_int_equal(o.temperature, SM_TEMP_STREAMING);
	assert_int_equal(sm_model_option_apply(&o, "--mpi", NULL, &err), 2);
	assert_int_equal(sm_model_option_apply(&o, "--node-mem", "1G", &err), 0);

	sm_error_clear(&err);
	assert_int_equal(sm_model_option_apply(&o, "--positions", "float16", &err), SM_EINVAL);
	assert_string_equal(err.msg, "--positions: 'float16' is not float32 or float64");
	assert_int_equal(o.positions, SM_DTYPE_F64);
	sm_error_clear(&err);
	assert_int_equal(sm_model_option_apply(&o, "--select", "kdtree", &err), SM_EINVAL);
	assert_string_equal(err.msg, "--select: 'kdtree' is not index or mask");
	sm_error_clear(&err);
	assert_int_equal(sm_model_option_apply(&o, "--temperature", "lazy", &err), SM_EINVAL);
	assert_string_equal(err.msg, "--temperature: 'lazy' is not in-memory or streaming");
	sm_error_clear(&err);
	assert_int_equal(sm_model_option_apply(&o, "--positions", NULL, &err), SM_EINVAL);
	assert_string_equal(err.msg, "--positions: missing value");
	sm_error_clear(&err);
	assert_int_equal(sm_model_option_apply(&o, "--ranks", "1048577", &err), SM_EINVAL);
	assert_string_equal(err.msg, "--ranks: '1048577' is not between 1 and 1048576");
	sm_error_clear(&err);
	assert_int_equal(sm_model_options_check(&o, &err), SM_EINVAL);
	assert_non_null(strstr(err.msg, "--select mask: does not apply with --mpi"));
	/* the given bits say what was typed: --ranks R alone is named, not --mpi */
	{
		sm_model_options r;
		char sw[48];

		sm_model_options_init(&r);
		assert_string_equal(sm_model_strategy_switch(&r, sw, sizeof(sw)), "--mpi");
		assert_int_equal(sm_model_option_apply(&r, "--ranks", "4", &err), 1);
		assert_true((r.given & SM_MODEL_GIVEN_RANKS) && !(r.given & SM_MODEL_GIVEN_MPI_FLAG));
		assert_string_equal(sm_model_strategy_switch(&r, sw, sizeof(sw)), "--ranks 4");
		assert_int_equal(sm_model_option_apply(&r, "--select", "mask", &err), 1);
		sm_error_clear(&err);
		assert_int_equal(sm_model_options_check(&r, &err), SM_EINVAL);
		assert_non_null(strstr(err.msg, "--select mask: does not apply with --ranks 4 "));
		assert_int_equal(sm_model_option_apply(&r, "--mpi", NULL, &err), 2);
		assert_string_equal(sm_model_strategy_switch(&r, sw, sizeof(sw)), "--mpi --ranks 4");
	}
}

/* More massive first, ties by lower group index, NaN last (among themselves by index). */
static void test_halo_order(void **state)
{
	(void)state;
	assert_true(sm_model_halo_cmp(2.0, 5, 1.0, 1) < 0);
	assert_true(sm_model_halo_cmp(1.0, 1, 2.0, 5) > 0);
	assert_true(sm_model_halo_cmp(1.0, 1, 1.0, 5) < 0);
	assert_true(sm_model_halo_cmp(1.0, 5, 1.0, 1) > 0);
	assert_int_equal(sm_model_halo_cmp(1.0, 3, 1.0, 3), 0);
	assert_true(sm_model_halo_cmp(0.0, 9, NAN, 0) < 0);
	assert_true(sm_model_halo_cmp(NAN, 0, 0.0, 9) > 0);
	assert_true(sm_model_halo_cmp(NAN, 2, NAN, 4) < 0);
	assert_true(sm_model_halo_cmp(INFINITY, 9, 1e30, 0) < 0);
	/* float32 masses widened: 1.0000001f and 1.0f differ */
	assert_true(sm_model_halo_cmp((double)1.0000001f, 9, (double)1.0f, 0) < 0);

	/* the mass cut: strictly above, in Msun (1e10 Msun/h units, h = 0.6774) */
	assert_true(sm_model_m200_msun(6774.0, 0.6774) == 6774.0 * 1e10 / 0.6774);
	assert_false(sm_model_halo_above(6774.0, 0.6774, 6774.0 * 1e10 / 0.6774));
	assert_true(sm_model_halo_above(6775.0, 0.6774, 6774.0 * 1e10 / 0.6774));
	assert_false(sm_model_halo_above(NAN, 0.6774, 0));
}

/* The rule of docs/MPI.md written out plainly: repeatedly the largest unassigned file (lowest
 * number among equals) to the least-loaded rank (lowest among equals). */
static void reference_assign(const uint64_t *cells, size_t nf, uint32_t ranks, uint64_t *load,
			     int32_t *owner)
{
	size_t f;
	uint32_t q;

	memset(load, 0, ranks * sizeof(*load));
	for (f = 0; f < nf; f++)
		owner[f] = -1;
	for (;;) {
		long best = -1;
		uint32_t least = 0;

		for (f = 0; f < nf; f++)
			if (owner[f] < 0 && cells[f] > 0 && (best < 0 || cells[f] > cells[best]))
				best = (long)f;
		if (best < 0)
			return;
		for (q = 1; q < ranks; q++)
			if (load[q] < load[least])
				least = q;
		owner[best] = (int32_t)least;
		load[least] += cells[best];
	}
}

static void test_assign_chunks(void **state)
{
	uint64_t c[40], l1[9], l2[9], big[2] = {UINT64_MAX, 1};
	int32_t o1[40], o2[40];
	uint32_t rk, seed = 12345;
	size_t f, trial;
	sm_error err;

	(void)state;
	/* unequal chunks with many ties, for 1 to 9 ranks: file by file the reference's */
	for (trial = 0; trial < 20; trial++) {
		for (f = 0; f < 40; f++) {
			seed = seed * 1103515245u + 12345u;
			c[f] = (seed >> 16) % 7 == 0 ? 0 : 1000 + (seed >> 16) % 5 * 250;
		}
		for (rk = 1; rk <= 9; rk++) {
			assert_int_equal(sm_model_assign_chunks(c, 40, rk, l1, o1, &err), 0);
			reference_assign(c, 40, rk, l2, o2);
			assert_memory_equal(o1, o2, sizeof(o1));
			assert_memory_equal(l1, l2, rk * sizeof(uint64_t));
		}
	}
	/* no output at all is fine; no files neither */
	assert_int_equal(sm_model_assign_chunks(c, 40, 3, NULL, NULL, &err), 0);
	assert_int_equal(sm_model_assign_chunks(NULL, 0, 3, l1, NULL, &err), 0);
	assert_int_equal(l1[2], 0);
	/* errors, one line each */
	sm_error_clear(&err);
	assert_int_equal(sm_model_assign_chunks(c, 40, 0, l1, o1, &err), SM_EINVAL);
	assert_string_equal(err.msg, "chunk assignment: needs at least 1 rank");
	sm_error_clear(&err);
	assert_int_equal(sm_model_assign_chunks(NULL, 4, 2, l1, o1, &err), SM_EINVAL);
	assert_string_equal(err.msg, "chunk assignment: 4 chunk files: cannot assign");
	sm_error_clear(&err);
	assert_int_equal(sm_model_assign_chunks(big, 2, 1, l1, o1, &err), SM_EOVERFLOW);
	assert_string_equal(err.msg, "chunk assignment: the cells of rank 0 do not fit in 64 bits");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vocabularies),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_option_apply),
		cmocka_unit_test(test_halo_order),
		cmocka_unit_test(test_assign_chunks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
