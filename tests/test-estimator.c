/*
 * The estimator's model through its API: every stage's formula of docs/MODEL.md for both positions
 * dtypes, both selects and both temperature modes (recomputed here independently from the formulas,
 * not from the code), allocated = sm_prof_nallocx of each request, the TNG300-1 exact figures,
 * overflow, sphere-cell override/calibration/model, node-fit alternatives, estimate.json keys, the
 * atomic writer; and the distributed strategy of docs/MPI.md: every stage's bytes for a small input
 * written out by hand, the halo grid side, the chunk assignment and the node arithmetic.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "snapmem/estimator.h"
#include "snapmem/mock.h"
#include "snapmem/pipeline.h"
#include "snapmem/profiler.h"
#include "util.h"

static const sm_est_stage *stage(const sm_estimate *e, const char *id)
{
	size_t i;

	for (i = 0; i < e->nstages; i++)
		if (strcmp(e->stages[i].id, id) == 0)
			return &e->stages[i];
	return NULL;
}

static const sm_est_array *array(const sm_est_stage *st, const char *name)
{
	size_t i;

	for (i = 0; st != NULL && i < st->narrays; i++)
		if (strcmp(st->arrays[i].name, name) == 0)
			return &st->arrays[i];
	return NULL;
}

/* A small input: N cells, G groups, K halos with measured sphere cells. */
static void small_input(sm_est_input *in, uint64_t n, uint64_t g, const uint64_t *cells, size_t k)
{
	size_t i;

	memset(in, 0, sizeof(*in));
	strcpy(in->source_kind, "snapshot");
	strcpy(in->source_name, "test");
	in->snap = -1;
	in->header.npart_total[0] = n;
	in->header.box_size = 1000;
	in->header.hubble_param = 0.7;
	in->header.omega0 = 0.3;
	in->header.omega_baryon = 0.05;
	in->header.omega_lambda = 0.7;
	in->header.num_files = 1;
	in->groups_total = g;
	in->halos = calloc(k > 0 ? k : 1, sizeof(*in->halos));
	assert_non_null(in->halos);
	for (i = 0; i < k; i++) {
		in->halos[i].group_index = (int64_t)i;
		in->halos[i].m200_msun = 1e15 / (double)(i + 1);
		in->halos[i].sphere_cells = cells[i];
	}
	in->nhalos = k;
}

static void check_allocated(const sm_estimate *e)
{
	size_t i, j;

	for (i = 0; i < e->nstages; i++)
		for (j = 0; j < e->stages[i].narrays; j++) {
			const sm_est_array *a = &e->stages[i].arrays[j];
			uint64_t want = sm_prof_nallocx(a->requested);

			assert_int_equal(a->allocated, want < a->requested ? a->requested : want);
			assert_true(a->allocated >= a->requested);
		}
}

/* Every formula of docs/MODEL.md for one combination, recomputed from the text. */
static void check_formulas(sm_dtype pos, sm_select sel, sm_temp_mode tm)
{
	const uint64_t n = 100000, g = 500, k = 3, blk = 4096;
	const uint64_t cells[3] = {7000, 9000, 100};
	const uint64_t p = pos == SM_DTYPE_F64 ? 8 : 4, ib = 4;
	uint64_t m, base, live, s = 9000;
	sm_est_input in;
	sm_model_options o;
	sm_estimate e;
	sm_error err = {0};
	const sm_est_stage *st;

	small_input(&in, n, g, cells, k);
	sm_model_options_init(&o);
	o.positions = pos;
	o.select = sel;
	o.temperature = tm;
	o.stream_block = blk;
	assert_int_equal(sm_estimate_compute(&in, &o, &e, &err), 0);
	check_allocated(&e);
	assert_string_equal(e.sphere_cells_source, "calibrated");

	st = stage(&e, "load_halos");
	assert_non_null(st);
	assert_int_equal(st->peak, 20 * g + 48 * k);
	assert_int_equal(st->live_after, 48 * k);
	assert_int_equal(array(st, "GroupPos")->count, 3 * g);
	assert_string_equal(array(st, "GroupPos")->freed_in, "load_halos");
	assert_null(array(st, "halo_center")->freed_in);
	assert_int_equal(array(st, "halo_center")->requested, 24 * k);

	st = stage(&e, "load_gas_fields");
	if (tm == SM_TEMP_IN_MEMORY) {
		assert_int_equal(st->narrays, 3);
		assert_int_equal(array(st, "InternalEnergy")->requested, 4 * n);
		assert_int_equal(st->live_after, 48 * k + 12 * n);
	} else {
		assert_int_equal(st->narrays, 0);
		assert_int_equal(st->live_after, 48 * k);
	}
	st = stage(&e, "compute_temperature");
	assert_int_equal(array(st, "temperature")->requested, 4 * n);
	if (tm == SM_TEMP_IN_MEMORY) {
		assert_int_equal(st->peak, 48 * k + 16 * n);
	} else {
		assert_int_equal(st->peak, 48 * k + 4 * n + 12 * blk);
		assert_int_equal(array(st, "StarFormationRate")->count, blk);
	}
	assert_int_equal(st->live_after, 48 * k + 4 * n);

	st = stage(&e, "load_positions");
	assert_int_equal(array(st, "Coordinates")->requested, 3 * p * n);
	assert_int_equal(array(st, "Coordinates")->dtype, pos);
	assert_int_equal(st->peak, 48 * k + 4 * n + 3 * p * n + (p == 4 ? 1048576 : 0));
	assert_true((array(st, "io_buffer") != NULL) == (p == 4));
	live = 48 * k + 4 * n + 3 * p * n;
	assert_int_equal(st->live_after, live);

	st = stage(&e, "build_index");
	if (sel == SM_SELECT_INDEX) {
		/* 14^3 * 32 = 87,808 <= 100,000 < 15^3 * 32 = 108,000 */
		m = 14 * 14 * 14;
		assert_non_null(st);
		assert_int_equal(array(st, "index_cell_start")->count, m + 1);
		assert_int_equal(array(st, "index_cell_fill")->count, m);
		assert_int_equal(st->peak, live + 16 * m + 8);
		assert_int_equal(st->live_after, live + 8 * (m + 1));
		live += 8 * (m + 1);
	} else {
		assert_null(st);
	}
	base = live;

	/* Per-halo stages are for the largest sphere: instance 1 (9000 cells). */
	st = stage(&e, "select_sphere");
	assert_int_equal(st->instance, 1);
	assert_true(st->per_halo);
	if (sel == SM_SELECT_INDEX) {
		assert_int_equal(array(st, "sphere_cells")->requested, ib * s);
		assert_int_equal(array(st, "sphere_cells")->dtype, SM_DTYPE_U32);
	} else {
		assert_int_equal(array(st, "sphere_mask")->requested, n);
	}
	st = stage(&e, "radial_distance");
	assert_int_equal(array(st, "radius")->requested, p * s);
	st = stage(&e, "mask_arrays");
	assert_int_equal(array(st, "selected_temperature")->requested, 4 * s);
	assert_int_equal(array(st, "selected_positions")->requested, 3 * p * s);
	st = stage(&e, "histogram_write");
	assert_int_equal(array(st, "histogram")->requested, 25200);
	if (sel == SM_SELECT_INDEX)
		assert_int_equal(st->peak, base + s * (ib + 4 + 4 * p) + 25200);
	else
		assert_int_equal(st->peak, base + n + s * (4 + 4 * p) + 25200);
	assert_int_equal(st->live_after, base);
	assert_int_equal(e.halo_peak[1], st->peak);
	assert_int_equal(e.halo_sphere_cells[0], 7000);
	if (sel == SM_SELECT_INDEX)
		assert_int_equal(e.halo_peak[2], base + 100 * (ib + 4 + 4 * p) + 25200);

	/* The overall peak is the largest stage peak; the total adds the baseline. */
	{
		size_t i;
		uint64_t mx = 0;

		for (i = 0; i < e.nstages; i++)
			if (e.stages[i].peak > mx)
				mx = e.stages[i].peak;
		assert_int_equal(e.peak, mx);
		assert_int_equal(e.stages[e.peak_stage].peak, mx);
		assert_int_equal(e.peak_total, e.peak_allocated + e.baseline);
		assert_int_equal(e.baseline, sm_est_baseline_bytes());
		assert_true(e.baseline > 0);
	}
	sm_estimate_release(&e);
	sm_est_input_release(&in);
}

static void test_formulas_f32_index_mem(void **s) { (void)s; check_formulas(SM_DTYPE_F32, SM_SELECT_INDEX, SM_TEMP_IN_MEMORY); }
static void test_formulas_f64_index_mem(void **s) { (void)s; check_formulas(SM_DTYPE_F64, SM_SELECT_INDEX, SM_TEMP_IN_MEMORY); }
static void test_formulas_f32_mask_mem(void **s) { (void)s; check_formulas(SM_DTYPE_F32, SM_SELECT_MASK, SM_TEMP_IN_MEMORY); }
static void test_formulas_f64_mask_mem(void **s) { (void)s; check_formulas(SM_DTYPE_F64, SM_SELECT_MASK, SM_TEMP_IN_MEMORY); }
static void test_formulas_f32_index_stream(void **s) { (void)s; check_formulas(SM_DTYPE_F32, SM_SELECT_INDEX, SM_TEMP_STREAMING); }
static void test_formulas_f64_index_stream(void **s) { (void)s; check_formulas(SM_DTYPE_F64, SM_SELECT_INDEX, SM_TEMP_STREAMING); }
static void test_formulas_f32_mask_stream(void **s) { (void)s; check_formulas(SM_DTYPE_F32, SM_SELECT_MASK, SM_TEMP_STREAMING); }
static void test_formulas_f64_mask_stream(void **s) { (void)s; check_formulas(SM_DTYPE_F64, SM_SELECT_MASK, SM_TEMP_STREAMING); }

static void test_grid_and_index_width(void **state)
{
	const uint64_t cells[1] = {10};
	sm_est_input in;
	sm_model_options o;
	sm_estimate e;
	sm_error err = {0};

	(void)state;
	/* N above 2^32 - 1: uint64 indices; the grid side clamps at 512. */
	small_input(&in, UINT64_C(4294967296), 0, cells, 1);
	sm_model_options_init(&o);
	assert_int_equal(sm_estimate_compute(&in, &o, &e, &err), 0);
	assert_int_equal(array(stage(&e, "select_sphere"), "sphere_cells")->dtype, SM_DTYPE_U64);
	assert_int_equal(array(stage(&e, "build_index"), "index_cell_fill")->count, 512u * 512u * 512u);
	sm_estimate_release(&e);
	sm_est_input_release(&in);
	/* Tiny N: grid side 1; streaming block clamps to N. */
	small_input(&in, 5, 0, cells, 1);
	o.temperature = SM_TEMP_STREAMING;
	assert_int_equal(sm_estimate_compute(&in, &o, &e, &err), 0);
	assert_int_equal(array(stage(&e, "build_index"), "index_cell_fill")->count, 1);
	assert_int_equal(array(stage(&e, "compute_temperature"), "InternalEnergy")->count, 5);
	assert_int_equal(e.halo_sphere_cells[0], 5); /* capped at N */
	sm_estimate_release(&e);
	sm_est_input_release(&in);
}

static void test_tng300_exact(void **state)
{
	sm_est_input in;
	sm_model_options o;
	sm_estimate e;
	sm_error err = {0};
	sm_est_documented rows[SM_EST_MAX_DOCUMENTED];
	int n, i, unexplained = 0;

	(void)state;
	sm_model_options_init(&o);
	assert_int_equal(sm_est_input_embedded(&in, &o, &err), 0);
	assert_int_equal(in.header.npart_total[0], UINT64_C(14454722210));
	assert_int_equal(in.header.num_files, 600);
	assert_int_equal(in.nhalos, 280);
	assert_int_equal(in.groups_total, 17625892);
	for (i = 0; i < 280; i++)
		assert_true(in.halos[i].m200_msun > 1e14);
	for (i = 1; i < 280; i++)
		assert_true(in.halos[i].m200_msun < in.halos[i - 1].m200_msun);
	assert_true(in.halos[0].m200_msun > 2.2e15 && in.halos[0].m200_msun < 2.3e15);
	assert_int_equal(sm_estimate_compute(&in, &o, &e, &err), 0);
	assert_int_equal(array(stage(&e, "load_gas_fields"), "InternalEnergy")->requested,
			 UINT64_C(57818888840));
	assert_int_equal(array(stage(&e, "load_gas_fields"), "StarFormationRate")->requested,
			 UINT64_C(57818888840));
	assert_int_equal(array(stage(&e, "load_positions"), "Coordinates")->requested,
			 UINT64_C(173456666520));
	assert_string_equal(e.sphere_cells_source, "model");
	/* The largest sphere: tens of millions of cells (about 0.3% of the box). */
	assert_true(e.halo_sphere_cells[0] > 10000000 && e.halo_sphere_cells[0] < 200000000);
	for (i = 1; i < 280; i++)
		assert_true(e.halo_sphere_cells[i] <= e.halo_sphere_cells[i - 1]);

	n = sm_est_documented_rows(&in, &e, rows, SM_EST_MAX_DOCUMENTED, &err);
	assert_true(n >= 10);
	for (i = 0; i < n; i++) {
		if (strcmp(rows[i].documented_text, "7.890625 kB") == 0) {
			assert_int_equal(rows[i].documented, 8080);
			assert_int_equal(rows[i].notebook, 8080);
		}
		if (strcmp(rows[i].documented_text, "161.54410924762487 GB") == 0) {
			assert_int_equal(rows[i].documented, UINT64_C(173456666520));
			assert_int_equal(rows[i].estimated, UINT64_C(173456666520));
			assert_int_equal(rows[i].difference, 0);
		}
		if (strcmp(rows[i].documented_text, "53.84803641587496 GB") == 0)
			assert_int_equal(rows[i].estimated, UINT64_C(57818888840));
		if (strcmp(rows[i].what, "positions, float64") == 0)
			assert_int_equal(rows[i].estimated, UINT64_C(346913333040));
		if (rows[i].unexplained) {
			unexplained++;
			/* 20.06 / 40.11 GiB above temperature + positions */
			assert_true(rows[i].difference > 0);
			assert_true(fabs((double)rows[i].difference / 1073741824.0 -
					 (strstr(rows[i].what, "float32") != NULL ? 20.06 : 40.11)) < 0.005);
		}
	}
	assert_int_equal(unexplained, 2);
	sm_estimate_release(&e);
	sm_est_input_release(&in);
}

static void test_overflow(void **state)
{
	const uint64_t cells[1] = {1};
	sm_est_input in;
	sm_model_options o;
	sm_estimate e;
	sm_error err = {0};

	(void)state;
	/* 3 * 8 * N does not fit 64 bits (Coordinates), 4 N does. */
	small_input(&in, UINT64_C(1) << 60, 0, cells, 1);
	sm_model_options_init(&o);
	o.positions = SM_DTYPE_F64;
	o.select = SM_SELECT_MASK;
	assert_int_equal(sm_estimate_compute(&in, &o, &e, &err), SM_EOVERFLOW);
	assert_int_equal(err.code, SM_EOVERFLOW);
	assert_non_null(strstr(err.msg, "64 bits"));
	assert_null(strchr(err.msg, '\n'));
	sm_est_input_release(&in);
	/* 4 N itself overflows. */
	small_input(&in, UINT64_MAX / 2, 0, cells, 1);
	o.positions = SM_DTYPE_F32;
	sm_error_clear(&err);
	assert_int_equal(sm_estimate_compute(&in, &o, &e, &err), SM_EOVERFLOW);
	sm_est_input_release(&in);
}

static void test_options(void **state)
{
	sm_model_options o;
	sm_error err = {0};

	(void)state;
	sm_model_options_init(&o);
	assert_int_equal(o.positions, SM_DTYPE_F32);
	assert_int_equal(o.select, SM_SELECT_INDEX);
	assert_int_equal(o.temperature, SM_TEMP_IN_MEMORY);
	assert_int_equal(o.stream_block, 131072);
	assert_int_equal(o.halos, -1);
	assert_true(o.mass_min == 1e14);
	assert_int_equal(o.ranks, 1);
	assert_int_equal(sm_model_option_apply(&o, "--positions", "float64", &err), 1);
	assert_int_equal(o.positions, SM_DTYPE_F64);
	assert_int_equal(sm_model_option_apply(&o, "--select", "mask", &err), 1);
	assert_int_equal(sm_model_option_apply(&o, "--temperature", "streaming", &err), 1);
	assert_int_equal(sm_model_option_apply(&o, "--stream-block", "65536", &err), 1);
	assert_int_equal(o.stream_block, 65536);
	assert_int_equal(sm_model_option_apply(&o, "--halos", "12", &err), 1);
	assert_int_equal(o.halos, 12);
	assert_int_equal(sm_model_option_apply(&o, "--ranks", "4", &err), 1);
	assert_int_equal(sm_model_option_apply(&o, "--sphere-cells", "1e6", &err), 1);
	assert_int_equal(o.sphere_cells, 1000000);
	assert_int_equal(sm_model_option_apply(&o, "--calibrate", "/tmp/x", &err), 1);
	assert_string_equal(o.calibrate, "/tmp/x");
	assert_int_equal(sm_model_option_apply(&o, "--mass-min", "5e14", &err), 1);
	assert_int_equal(o.halos, -1);
	assert_int_equal(sm_model_option_apply(&o, "--node-mem", "1G", &err), 0);
	assert_int_equal(sm_model_option_apply(&o, "--positions", "float16", &err), SM_EINVAL);
	assert_non_null(strstr(err.msg, "float16"));
	assert_int_equal(sm_model_option_apply(&o, "--select", "kdtree", &err), SM_EINVAL);
	assert_int_equal(sm_model_option_apply(&o, "--temperature", "x", &err), SM_EINVAL);
	assert_int_equal(sm_model_option_apply(&o, "--stream-block", "0", &err), SM_EINVAL);
	assert_int_equal(sm_model_option_apply(&o, "--halos", "-3", &err), SM_EINVAL);
	assert_int_equal(sm_model_option_apply(&o, "--halos", NULL, &err), SM_EINVAL);
	assert_int_equal(sm_model_option_apply(&o, "--ranks", "0", &err), SM_EINVAL);
	assert_int_equal(sm_model_option_apply(&o, "--sphere-cells", "0", &err), SM_EINVAL);
	assert_int_equal(sm_model_option_apply(&o, "--mass-min", "lots", &err), SM_EINVAL);
	assert_int_equal(sm_model_option_apply(&o, "--calibrate", "", &err), SM_EINVAL);
	assert_non_null(strstr(sm_model_options_usage(), "--stream-block"));
}

static void test_override_and_ranks(void **state)
{
	sm_est_input in;
	sm_model_options o;
	sm_estimate e, e4;
	sm_error err = {0};
	uint64_t n;

	(void)state;
	sm_model_options_init(&o);
	o.sphere_cells = 1000000;
	assert_int_equal(sm_est_input_embedded(&in, &o, &err), 0);
	assert_int_equal(sm_estimate_compute(&in, &o, &e, &err), 0);
	assert_string_equal(e.sphere_cells_source, "override");
	assert_int_equal(e.halo_sphere_cells[0], 1000000);
	assert_true(e.halo_sphere_cells[279] < 100000); /* scaled by mass */
	assert_int_equal(array(stage(&e, "mask_arrays"), "selected_temperature")->count, 1000000);

	/* Four ranks: the distributed strategy, whose ranks hold the same arrays whatever R. */
	o.ranks = 4;
	n = in.header.npart_total[0];
	assert_int_equal(sm_estimate_compute(&in, &o, &e4, &err), 0);
	assert_true(e4.mpi);
	assert_true(e4.options.mpi);
	assert_null(stage(&e4, "load_gas_fields"));
	assert_int_equal(array(stage(&e4, "stream_cells"), "InternalEnergy")->count, 131072);
	/* one catalogue chunk at a time: ceil(17,625,892 / 600) groups */
	assert_int_equal(array(stage(&e4, "load_halos"), "Group_M_Crit200")->count, 29377);
	assert_int_equal(array(stage(&e, "load_halos"), "Group_M_Crit200")->count, 17625892);
	assert_true(e4.peak * 100 < e.peak);
	assert_true(n > 0);
	sm_estimate_release(&e4);
	sm_estimate_release(&e);
	sm_est_input_release(&in);

	/* --halos N / --mass-min on the embedded source. */
	sm_model_options_init(&o);
	o.halos = 10;
	assert_int_equal(sm_est_input_embedded(&in, &o, &err), 0);
	assert_int_equal(in.nhalos, 10);
	sm_est_input_release(&in);
	sm_model_options_init(&o);
	o.mass_min = 5e14;
	assert_int_equal(sm_est_input_embedded(&in, &o, &err), 0);
	assert_true(in.nhalos > 5 && in.nhalos < 280);
	assert_true(in.halos[in.nhalos - 1].m200_msun > 5e14);
	sm_est_input_release(&in);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_calibrate(void **state)
{
	char *dir = tu_tmpdir(), *mem = tu_path(dir, "memory.json");
	sm_est_input in;
	sm_model_options o;
	sm_estimate e, em;
	sm_error err = {0};

	(void)state;
	sm_model_options_init(&o);
	assert_int_equal(sm_est_input_embedded(&in, &o, &err), 0);
	assert_int_equal(sm_estimate_compute(&in, &o, &em, &err), 0);
	sm_est_input_release(&in);

	write_file(mem, "{\"schema\":\"snapmem.memory/1\",\"run\":{\"halos\":["
			"{\"instance\":0,\"group_index\":null,\"sphere_cells\":123456},"
			"{\"instance\":1,\"sphere_cells\":1000}]}}");
	snprintf(o.calibrate, sizeof(o.calibrate), "%s", dir);
	assert_int_equal(sm_est_input_embedded(&in, &o, &err), 0);
	assert_int_equal(in.halos[0].sphere_cells, 123456);
	assert_int_equal(sm_estimate_compute(&in, &o, &e, &err), 0);
	assert_string_equal(e.sphere_cells_source, "calibrated");
	assert_int_equal(e.halo_sphere_cells[0], 123456);
	assert_int_equal(e.halo_sphere_cells[1], 1000);
	/* unmatched halos: model scaled by the matched measured/model ratio (far below the model) */
	assert_true(e.halo_sphere_cells[2] < em.halo_sphere_cells[2] / 10);
	sm_estimate_release(&e);
	sm_estimate_release(&em);
	sm_est_input_release(&in);

	write_file(mem, "{\"run\":{\"halos\":[{\"instance\":0,\"sphere_cells\":\"many\"}]}}");
	assert_int_equal(sm_est_input_embedded(&in, &o, &err), SM_EFORMAT);
	assert_non_null(strstr(err.msg, "sphere_cells"));
	write_file(mem, "{\"run\":");
	assert_int_equal(sm_est_input_embedded(&in, &o, &err), SM_EFORMAT);
	write_file(mem, "{\"schema\":\"snapmem.memory/1\"}");
	assert_int_equal(sm_est_input_embedded(&in, &o, &err), SM_EFORMAT);
	assert_non_null(strstr(err.msg, "run.halos"));
	unlink(mem);
	assert_int_equal(sm_est_input_embedded(&in, &o, &err), SM_ENOTFOUND);
	assert_non_null(strstr(err.msg, "memory.json"));
	free(mem);
	tu_rmtree(dir);
	free(dir);
}

static void test_alternatives(void **state)
{
	sm_est_input in;
	sm_model_options o;
	sm_est_alternative *alts = NULL;
	sm_error err = {0};
	size_t n = 0, i;
	uint32_t r = 0;

	(void)state;
	sm_model_options_init(&o);
	assert_int_equal(sm_est_input_embedded(&in, &o, &err), 0);
	assert_int_equal(sm_est_alternatives(&in, &o, UINT64_C(300) << 30, &alts, &n, &err), 0);
	/* one process: 2 x 2 x (in-memory + 4 blocks: the sweep's 3 and the default's 131,072);
	 * distributed: 2 positions x 4 blocks */
	assert_int_equal(n, 2 * 2 * 5 + 2 * 4);
	for (i = 1; i < n; i++)
		assert_true(alts[i - 1].peak_total <= alts[i].peak_total);
	for (i = 0; i < n; i++) {
		assert_int_equal(alts[i].fits, alts[i].peak_total <= (UINT64_C(300) << 30));
		if (alts[i].options.mpi) {
			/* a rank holds tables, index, sums and a block: well under 1 GiB */
			assert_true(alts[i].fits);
			assert_true(alts[i].peak_total < (UINT64_C(1) << 30));
			assert_int_equal(alts[i].options.select, SM_SELECT_INDEX);
			assert_int_equal(alts[i].options.temperature, SM_TEMP_IN_MEMORY);
		} else {
			/* float32 positions fit 300 GiB, float64 do not (3 x 8 x N alone is 323 GiB) */
			assert_int_equal(alts[i].fits, alts[i].options.positions == SM_DTYPE_F32);
			assert_int_equal(alts[i].options.ranks, 1);
		}
	}
	/* the smallest are distributed */
	assert_true(alts[0].options.mpi);
	free(alts);
	/* 128 GiB: no one-process combination fits, the distributed strategy does (any R) */
	assert_int_equal(sm_est_alternatives(&in, &o, UINT64_C(128) << 30, &alts, &n, &err), 0);
	for (i = 0; i < n; i++)
		assert_int_equal(alts[i].fits, alts[i].options.mpi);
	free(alts);
	assert_int_equal(sm_est_ranks_needed(&in, &o, UINT64_C(128) << 30, &r, &err), 0);
	assert_int_equal(r, 1);
	/* a rank holds one catalogue chunk, not the catalogue's 336 MiB: 300 MiB fits it */
	assert_int_equal(sm_est_ranks_needed(&in, &o, UINT64_C(300) << 20, &r, &err), 0);
	assert_int_equal(r, 1);
	assert_int_equal(sm_est_ranks_needed(&in, &o, UINT64_C(16) << 20, &r, &err), 0);
	assert_int_equal(r, 0);  /* 11.33 MiB requested and the 4.89 MiB baseline: over 16 MiB */
	assert_int_equal(sm_est_ranks_needed(&in, &o, 1024, &r, &err), 0);
	assert_int_equal(r, 0);
	sm_est_input_release(&in);
}

static void test_json(void **state)
{
	sm_est_input in;
	sm_model_options o;
	sm_estimate e;
	sm_est_verdict v;
	sm_error err = {0};
	char *text;
	json_t *root, *st, *arr;
	json_error_t jerr;

	(void)state;
	sm_model_options_init(&o);
	assert_int_equal(sm_est_input_embedded(&in, &o, &err), 0);
	assert_int_equal(sm_estimate_compute(&in, &o, &e, &err), 0);
	assert_int_equal(sm_est_verdict_compute(&in, &e, UINT64_C(1) << 40, 0, &v, &err), 0);
	text = sm_estimate_json(&in, &e, &v, NULL);
	sm_est_verdict_release(&v);
	assert_non_null(text);
	root = json_loads(text, 0, &jerr);
	assert_non_null(root);
	assert_string_equal(json_string_value(json_object_get(root, "schema")), "snapmem.estimate/1");
	assert_string_equal(json_string_value(json_object_get(json_object_get(root, "source"), "kind")),
			    "embedded");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(root, "header"),
							    "gas_cells")), INT64_C(14454722210));
	st = json_array_get(json_object_get(root, "stages"), 1);
	assert_string_equal(json_string_value(json_object_get(st, "id")), "load_gas_fields");
	arr = json_array_get(json_object_get(st, "arrays"), 0);
	assert_string_equal(json_string_value(json_object_get(arr, "name")), "InternalEnergy");
	assert_int_equal(json_integer_value(json_object_get(arr, "requested_bytes")),
			 INT64_C(57818888840));
	assert_true(json_is_integer(json_object_get(arr, "allocated_bytes")));
	assert_true(json_is_integer(json_object_get(st, "live_after_bytes")));
	assert_true(json_is_integer(json_object_get(st, "peak_bytes")));
	assert_int_equal(json_integer_value(json_object_get(root, "peak_bytes")), (json_int_t)e.peak);
	assert_string_equal(json_string_value(json_object_get(root, "peak_stage")),
			    e.stages[e.peak_stage].id);
	assert_true(json_is_true(json_object_get(root, "fits")));
	assert_int_equal(json_array_size(json_object_get(root, "alternatives")), 28);
	assert_true(json_is_false(json_object_get(json_object_get(root, "options"), "mpi")));
	assert_null(json_object_get(root, "mpi"));  /* one process: no mpi object */
	assert_true(json_array_size(json_object_get(root, "documented")) >= 10);
	assert_true(json_array_size(json_object_get(json_object_get(root, "halos"), "assumptions")) >= 4);
	assert_int_equal(json_array_size(json_object_get(json_object_get(root, "halos"), "per_halo")),
			 280);
	assert_int_equal(json_integer_value(json_object_get(root, "baseline_bytes")),
			 (json_int_t)sm_est_baseline_bytes());
	json_decref(root);
	free(text);

	text = sm_tradeoff_json(&in, &o, NULL, &err);
	assert_non_null(text);
	root = json_loads(text, 0, &jerr);
	assert_non_null(root);
	assert_string_equal(json_string_value(json_object_get(root, "schema")), "snapmem.tradeoff/1");
	assert_int_equal(json_array_size(json_object_get(root, "variants")), 10);
	json_decref(root);
	free(text);
	sm_estimate_release(&e);
	sm_est_input_release(&in);
}

/* ---- the distributed strategy (docs/MPI.md) -------------------------------------------------- */

/* small_input with known R200 per halo (box 1000). */
static void mpi_input(sm_est_input *in, uint64_t n, uint64_t g, const double *r200, size_t k)
{
	uint64_t cells[8] = {0};
	size_t i;

	small_input(in, n, g, cells, k);
	for (i = 0; i < k; i++) {
		in->halos[i].r200 = r200[i];
		in->halos[i].sphere_cells = 0;
	}
}

/* Sum of sm_prof_nallocx over a list of requests, as the simulated heap adds them. */
static uint64_t nalloc_sum(const uint64_t *req, size_t n)
{
	uint64_t t = 0, a;
	size_t i;

	for (i = 0; i < n; i++) {
		a = sm_prof_nallocx(req[i]);
		t += a < req[i] ? req[i] : a;
	}
	return t;
}

/* Every stage of docs/MPI.md for 100,000 cells, 500 groups, 3 halos of R200 50, 20, 10 in a box
 * of 1000, blocks of 4096 cells: the bytes written out by hand. */
static void check_mpi(sm_dtype pos)
{
	const double r200[3] = {50, 20, 10};
	const uint64_t n = 100000, g = 500, gc = 120, k = 3, blk = 4096;
	const uint64_t p = pos == SM_DTYPE_F64 ? 8 : 4;
	/* s_max = 100, margin 0.01: hg = floor(1000 / 200.02) = 4, 64 grid cells, 8 per halo */
	const uint64_t hg = 4, start = 4 * (64 + 1), list = 4 * 3 * 8;
	const uint64_t halos = 48 * k, sums = 25200 * k;
	sm_est_input in;
	sm_model_options o;
	sm_estimate e;
	sm_error err = {0};
	const sm_est_stage *st;

	mpi_input(&in, n, g, r200, k);
	in.groups_chunk_max = gc;   /* the largest catalogue chunk */
	sm_model_options_init(&o);
	o.positions = pos;
	o.stream_block = blk;
	o.ranks = 3;  /* implies --mpi */
	assert_int_equal(sm_estimate_compute(&in, &o, &e, &err), 0);
	check_allocated(&e);
	assert_true(e.mpi);
	assert_int_equal(e.nstages, 4);
	assert_string_equal(e.stages[0].id, "load_halos");
	assert_string_equal(e.stages[1].id, "build_index");
	assert_string_equal(e.stages[2].id, "stream_cells");
	assert_string_equal(e.stages[3].id, "histogram_write");
	assert_int_equal(e.halo_grid_side, hg);
	assert_true(e.sphere_radius_max == 100.0);

	/* load_halos: one catalogue chunk's three columns at a time, Gc groups each */
	st = stage(&e, "load_halos");
	assert_int_equal(st->narrays, 7);
	assert_int_equal(array(st, "Group_M_Crit200")->count, gc);
	assert_int_equal(array(st, "Group_M_Crit200")->requested, 4 * gc);
	assert_int_equal(array(st, "Group_R_Crit200")->requested, 4 * gc);
	assert_int_equal(array(st, "GroupPos")->count, 3 * gc);
	assert_int_equal(array(st, "GroupPos")->requested, 12 * gc);
	assert_string_equal(array(st, "GroupPos")->freed_in, "load_halos");
	assert_int_equal(array(st, "halo_center")->requested, 24 * k);
	assert_null(array(st, "halo_center")->freed_in);
	assert_int_equal(st->peak, 20 * gc + halos);
	assert_int_equal(st->live_after, halos);

	st = stage(&e, "build_index");
	assert_int_equal(st->narrays, 2);
	assert_int_equal(array(st, "halo_grid_start")->requested, start);
	assert_int_equal(array(st, "halo_grid_start")->dtype, SM_DTYPE_U32);
	assert_int_equal(array(st, "halo_grid_start")->count, 65);
	assert_int_equal(array(st, "halo_grid_halos")->requested, list);
	assert_string_equal(array(st, "halo_grid_halos")->freed_in, "histogram_write");
	assert_int_equal(st->peak, halos + start + list);
	assert_int_equal(st->live_after, halos + start + list);

	st = stage(&e, "stream_cells");
	assert_false(st->per_halo);
	assert_int_equal(st->instance, -1);
	assert_int_equal(st->narrays, p == 4 ? 7 : 6);
	assert_int_equal(array(st, "profile_sums")->requested, sums);
	assert_string_equal(array(st, "profile_sums")->freed_in, "histogram_write");
	assert_int_equal(array(st, "InternalEnergy")->requested, 4 * blk);
	assert_int_equal(array(st, "ElectronAbundance")->requested, 4 * blk);
	assert_int_equal(array(st, "StarFormationRate")->requested, 4 * blk);
	assert_int_equal(array(st, "temperature")->requested, 4 * blk);
	assert_int_equal(array(st, "Coordinates")->requested, 3 * p * blk);
	assert_int_equal(array(st, "Coordinates")->dtype, pos);
	assert_string_equal(array(st, "Coordinates")->freed_in, "stream_cells");
	if (p == 4)
		assert_int_equal(array(st, "io_buffer")->requested, 1048576);
	else
		assert_null(array(st, "io_buffer"));
	assert_int_equal(st->peak, halos + start + list + sums + blk * (16 + 3 * p) +
				   (p == 4 ? 1048576 : 0));
	assert_int_equal(st->live_after, halos + start + list + sums);
	{
		uint64_t req[10] = {24 * k, 8 * k, 8 * k, 8 * k, start, list, sums, 4 * blk, 4 * blk,
				    4 * blk};
		uint64_t more[3] = {4 * blk, 3 * p * blk, 1048576};

		/* allocated peak: every live array's size class, as the heap adds them */
		assert_int_equal(st->peak_allocated,
				 nalloc_sum(req, 10) + nalloc_sum(more, p == 4 ? 3 : 2));
	}

	st = stage(&e, "histogram_write");
	assert_false(st->per_halo);
	assert_int_equal(st->narrays, 0);
	assert_int_equal(st->peak, halos + start + list + sums);
	assert_int_equal(st->live_after, halos);
	assert_int_equal(e.peak, stage(&e, "stream_cells")->peak);
	assert_string_equal(e.stages[e.peak_stage].id, "stream_cells");
	assert_int_equal(e.peak_total, e.peak_allocated + e.baseline);
	/* a rank's baseline is measured after MPI_Init: above one process's */
	assert_true(e.baseline > sm_est_baseline_bytes() + 4000000);
	/* a small input with no chunk sizes: the work split is unknown */
	assert_false(e.have_cells_per_rank);
	assert_int_equal(e.files, 1);
	assert_int_equal(e.files_with_gas, -1);
	sm_estimate_release(&e);

	/* the same arrays at any number of ranks */
	o.ranks = 1000;
	{
		sm_estimate e2;

		assert_int_equal(sm_estimate_compute(&in, &o, &e2, &err), 0);
		assert_int_equal(e2.peak, halos + start + list + sums + blk * (16 + 3 * p) +
					  (p == 4 ? 1048576 : 0));
		sm_estimate_release(&e2);
	}
	sm_est_input_release(&in);
}

static void test_mpi_f32(void **s) { (void)s; check_mpi(SM_DTYPE_F32); }
static void test_mpi_f64(void **s) { (void)s; check_mpi(SM_DTYPE_F64); }

static void test_mpi_edges(void **state)
{
	const double big[2] = {300, 1}, none[1] = {0};
	sm_est_input in;
	sm_model_options o;
	sm_estimate e;
	sm_error err = {0};
	uint64_t hg;

	(void)state;
	sm_model_options_init(&o);
	o.mpi = 1;
	/* a sphere wider than half the box: grid side 1, a halo lists in min(8, 1) = 1 cell */
	mpi_input(&in, 5000, 10, big, 2);
	assert_int_equal(sm_estimate_compute(&in, &o, &e, &err), 0);
	assert_int_equal(e.halo_grid_side, 1);
	assert_int_equal(array(stage(&e, "build_index"), "halo_grid_start")->requested, 8);
	assert_int_equal(array(stage(&e, "build_index"), "halo_grid_halos")->requested, 4 * 2);
	/* stream block above N: b = N */
	assert_int_equal(array(stage(&e, "stream_cells"), "Coordinates")->count, 3 * 5000);
	sm_estimate_release(&e);
	sm_est_input_release(&in);

	/* no halo: grid side 1, no lists, no sums */
	mpi_input(&in, 5000, 10, none, 0);
	assert_int_equal(sm_estimate_compute(&in, &o, &e, &err), 0);
	assert_int_equal(e.halo_grid_side, 1);
	assert_int_equal(array(stage(&e, "build_index"), "halo_grid_halos")->requested, 0);
	assert_int_equal(array(stage(&e, "stream_cells"), "profile_sums")->requested, 0);
	sm_estimate_release(&e);
	sm_est_input_release(&in);

	/* no gas: no block arrays */
	mpi_input(&in, 0, 10, big + 1, 1);
	assert_int_equal(sm_estimate_compute(&in, &o, &e, &err), 0);
	assert_int_equal(stage(&e, "stream_cells")->narrays, 1);
	sm_estimate_release(&e);
	sm_est_input_release(&in);

	/* R200 unknown: modelled from M200 (1e15 Msun at h = 0.7: R200 = 1.44 Mpc/h, 2 R200 = 2888
	 * kpc/h); in a box of 20000 the grid side is floor(20000 / 5776.4) = 3 */
	mpi_input(&in, 5000, 10, none, 1);
	in.header.box_size = 20000;
	assert_int_equal(sm_estimate_compute(&in, &o, &e, &err), 0);
	assert_true(e.sphere_radius_max > 2850 && e.sphere_radius_max < 2930);
	hg = (uint64_t)floor(20000 / (2 * (e.sphere_radius_max + 1e-5 * 20000)));
	assert_int_equal(hg, 3);
	assert_int_equal(e.halo_grid_side, 3);
	sm_estimate_release(&e);
	sm_est_input_release(&in);

	/* Gc: not given by a non-embedded source (0): the whole catalogue, G; more than G: refused */
	mpi_input(&in, 5000, 10, big, 1);
	assert_int_equal(sm_estimate_compute(&in, &o, &e, &err), 0);
	assert_int_equal(array(stage(&e, "load_halos"), "GroupPos")->count, 3 * 10);
	assert_int_equal(stage(&e, "load_halos")->peak, 20 * 10 + 48);
	sm_estimate_release(&e);
	in.groups_chunk_max = 3;
	assert_int_equal(sm_estimate_compute(&in, &o, &e, &err), 0);
	assert_int_equal(stage(&e, "load_halos")->peak, 20 * 3 + 48);
	sm_estimate_release(&e);
	/* one process reads the whole catalogue whatever Gc */
	o.mpi = 0;
	assert_int_equal(sm_estimate_compute(&in, &o, &e, &err), 0);
	assert_int_equal(array(stage(&e, "load_halos"), "GroupPos")->count, 3 * 10);
	sm_estimate_release(&e);
	o.mpi = 1;
	in.groups_chunk_max = 11;
	assert_int_equal(sm_estimate_compute(&in, &o, &e, &err), SM_EINVAL);
	assert_non_null(strstr(err.msg, "more than Ngroups_Total 10"));
	sm_est_input_release(&in);

	/* mask or streaming with --mpi: refused by the model too */
	mpi_input(&in, 5000, 10, big, 1);
	o.select = SM_SELECT_MASK;
	assert_int_equal(sm_estimate_compute(&in, &o, &e, &err), SM_EINVAL);
	assert_non_null(strstr(err.msg, "--select mask"));
	o.select = SM_SELECT_INDEX;
	o.temperature = SM_TEMP_STREAMING;
	assert_int_equal(sm_estimate_compute(&in, &o, &e, &err), SM_EINVAL);
	sm_est_input_release(&in);
}

/* The halo grid side formula of docs/MPI.md, written out here independently. */
static void test_halo_grid_side(void **state)
{
	static const double cases[][3] = {
		/* box, s_max, side */
		{1000, 100, 4},          /* 1000 / 200.02 = 4.9995 */
		{1000, 99.98, 5},        /* 1000 / 199.98 = 5.0005 */
		{205000, 3723.5, 27},    /* TNG300-1's largest sphere */
		{1000, 1, 64},           /* 1000 / 2.02 = 495: clamped */
		{1000, 600, 1},          /* 0.83: at least 1 */
		{1000, 0, 1},            /* no halo */
		{0, 10, 1},              /* no box */
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double box = cases[i][0], sm = cases[i][1], q;
		uint64_t want;

		q = box > 0 && sm > 0 ? floor(box / (2.0 * (sm + 1e-5 * box))) : 1;
		want = q < 1 ? 1 : q > 64 ? 64 : (uint64_t)q;
		assert_int_equal(want, (uint64_t)cases[i][2]);
		assert_int_equal(sm_model_halo_grid_side(box, sm), want);
	}
}

/* Largest chunk first to the least-loaded rank, ties to the lowest rank, on unequal chunks. */
static void test_assign_chunks(void **state)
{
	const uint64_t cells[6] = {10, 50, 0, 30, 30, 5};
	uint64_t load[8];
	int32_t fr[6];
	sm_error err = {0};

	(void)state;
	/* 2 ranks: 50 -> r0, 30 (file 3) -> r1, 30 (file 4) -> r1 (30 < 50), 10 -> r0 (50 < 60),
	 * 5 -> r0 (60 = 60: the lower rank) */
	assert_int_equal(sm_model_assign_chunks(cells, 6, 2, load, fr, &err), 0);
	assert_int_equal(load[0], 65);
	assert_int_equal(load[1], 60);
	assert_int_equal(fr[0], 0);
	assert_int_equal(fr[1], 0);
	assert_int_equal(fr[2], -1);  /* no gas: not dealt */
	assert_int_equal(fr[3], 1);
	assert_int_equal(fr[4], 1);
	assert_int_equal(fr[5], 0);
	/* 3 ranks: 50 r0, 30 r1, 30 r2, 10 r1 (tie 30/30), 5 r2 -> 50, 40, 35 */
	assert_int_equal(sm_model_assign_chunks(cells, 6, 3, load, fr, &err), 0);
	assert_int_equal(load[0], 50);
	assert_int_equal(load[1], 40);
	assert_int_equal(load[2], 35);
	assert_int_equal(fr[0], 1);
	assert_int_equal(fr[5], 2);
	/* more ranks than files: the last ranks get nothing */
	assert_int_equal(sm_model_assign_chunks(cells, 6, 8, load, NULL, &err), 0);
	assert_int_equal(load[0], 50);
	assert_int_equal(load[4], 5);
	assert_int_equal(load[5], 0);
	assert_int_equal(load[7], 0);
	assert_int_equal(sm_model_assign_chunks(cells, 6, 0, load, NULL, &err), SM_EINVAL);

	/* through the estimate: the chunk sizes of a base-path source */
	{
		const double r200[1] = {10};
		sm_est_input in;
		sm_model_options o;
		sm_estimate e;
		char *text;
		json_t *root, *m;
		json_error_t jerr;

		mpi_input(&in, 125, 10, r200, 1);
		in.chunk_gas = malloc(6 * sizeof(uint64_t));
		assert_non_null(in.chunk_gas);
		memcpy(in.chunk_gas, cells, sizeof(cells));
		in.nchunks = 6;
		sm_model_options_init(&o);
		o.ranks = 2;
		assert_int_equal(sm_estimate_compute(&in, &o, &e, &err), 0);
		assert_true(e.have_cells_per_rank);
		assert_int_equal(e.cells_per_rank_max, 65);
		assert_int_equal(e.cells_per_rank_min, 60);
		assert_int_equal(e.files, 6);
		assert_int_equal(e.files_with_gas, 5);
		text = sm_estimate_json(&in, &e, NULL, NULL);
		assert_non_null(text);
		root = json_loads(text, 0, &jerr);
		assert_non_null(root);
		m = json_object_get(root, "mpi");
		assert_int_equal(json_integer_value(json_object_get(m, "cells_per_rank_max")), 65);
		assert_int_equal(json_integer_value(json_object_get(m, "files")), 6);
		assert_int_equal(json_integer_value(json_object_get(m, "ranks")), 2);
		assert_true(json_is_null(json_object_get(m, "ranks_per_node")));
		assert_true(json_is_null(json_object_get(m, "nodes_needed")));
		json_decref(root);
		free(text);
		sm_estimate_release(&e);
		sm_est_input_release(&in);
	}
}

static void test_node_fit(void **state)
{
	const uint64_t per = UINT64_C(403643360), node = UINT64_C(256) << 30;
	uint64_t rpn, nodes;

	(void)state;
	/* 274,877,906,944 / 403,643,360 = 680.99: 680 ranks per node */
	sm_est_node_fit(per, node, 64, &rpn, &nodes);
	assert_int_equal(rpn, 680);
	assert_int_equal(nodes, 1);
	sm_est_node_fit(per, node, 680, &rpn, &nodes);
	assert_int_equal(nodes, 1);
	sm_est_node_fit(per, node, 681, &rpn, &nodes);
	assert_int_equal(nodes, 2);
	sm_est_node_fit(per, node, 1361, &rpn, &nodes);
	assert_int_equal(nodes, 3);
	sm_est_node_fit(per, per - 1, 4, &rpn, &nodes);
	assert_int_equal(rpn, 0);
	assert_int_equal(nodes, 0);
	sm_est_node_fit(per, per, 4, &rpn, &nodes);
	assert_int_equal(rpn, 1);
	assert_int_equal(nodes, 4);
}

/* TNG300-1 with 64 ranks: the planning answer's figures, and its estimate.json object. */
static void test_mpi_tng300(void **state)
{
	sm_est_input in;
	sm_model_options o;
	sm_estimate e;
	sm_error err = {0};
	char *text;
	json_t *root, *m;
	json_error_t jerr;
	sm_est_verdict v;
	const uint64_t node = UINT64_C(256) << 30;

	(void)state;
	sm_model_options_init(&o);
	o.ranks = 64;
	assert_int_equal(sm_model_options_check(&o, &err), 0);
	assert_int_equal(sm_est_input_embedded(&in, &o, &err), 0);
	assert_int_equal(sm_estimate_compute(&in, &o, &e, &err), 0);
	/* load_halos holds one catalogue chunk: Gc = ceil(17,625,892 / 600) = 29,377 groups (the
	 * embedded header has no chunk sizes; groups_099 has 600 files), 20 Gc + 48 K */
	assert_int_equal(array(stage(&e, "load_halos"), "Group_M_Crit200")->count, 29377);
	assert_int_equal(stage(&e, "load_halos")->peak, 20 * 29377 + 48 * 280);
	assert_int_equal(stage(&e, "load_halos")->peak, 600980);
	/* the peak is streaming: 48 K + the index (27^3 + 1 starts, 8 cells per halo) + 280 halos'
	 * sums + a block of 131,072 cells of 28 B + the 1 MiB conversion buffer */
	assert_string_equal(e.stages[e.peak_stage].id, "stream_cells");
	assert_int_equal(e.peak, 48 * 280 + 4 * (27 * 27 * 27 + 1) + 4 * 280 * 8 + 25200 * 280 +
				 UINT64_C(131072) * 28 + 1048576);
	assert_int_equal(e.peak, 11875728);
	{
		const char *as[32];
		size_t na = sm_est_assumptions(&in, &e, as, 32), i, found = 0;

		for (i = 0; i < na; i++)
			found += strstr(as[i], "ceil(Ngroups_Total / 600) = 29,377") != NULL;
		assert_int_equal(found, 1);
	}
	assert_int_equal(array(stage(&e, "stream_cells"), "profile_sums")->requested, 25200 * 280);
	assert_int_equal(e.files, 600);
	assert_false(e.have_cells_per_rank);
	assert_int_equal(sm_est_verdict_compute(&in, &e, node, 0, &v, &err), 0);
	text = sm_estimate_json(&in, &e, &v, NULL);
	sm_est_verdict_release(&v);
	assert_non_null(text);
	root = json_loads(text, 0, &jerr);
	assert_non_null(root);
	assert_true(json_is_true(json_object_get(json_object_get(root, "options"), "mpi")));
	m = json_object_get(root, "mpi");
	assert_non_null(m);
	assert_int_equal(json_integer_value(json_object_get(m, "ranks")), 64);
	assert_int_equal(json_integer_value(json_object_get(m, "files")), 600);
	assert_true(json_is_null(json_object_get(m, "cells_per_rank_max")));
	assert_int_equal(json_integer_value(json_object_get(m, "per_rank_peak_total_bytes")),
			 (json_int_t)e.peak_total);
	assert_int_equal(json_integer_value(json_object_get(m, "node_mem_bytes")), (json_int_t)node);
	assert_int_equal(json_integer_value(json_object_get(m, "ranks_per_node")),
			 (json_int_t)(node / e.need));
	assert_int_equal(json_integer_value(json_object_get(m, "nodes_needed")), 1);
	assert_int_equal(json_integer_value(json_object_get(root, "ranks_needed")), 1);
	/* the stages are one rank's */
	assert_int_equal(json_array_size(json_object_get(root, "stages")), 4);
	json_decref(root);
	free(text);
	sm_estimate_release(&e);
	sm_est_input_release(&in);
}

/* A base path with a catalogue: Gc from the catalogue chunk headers (unequal chunks, chunk 1
 * empty), whatever the options; a missing or broken chunk is an error naming it. */
static void test_groups_chunk_max(void **state)
{
	char *dir = tu_tmpdir(), path[4096];
	sm_mock_options mo;
	sm_model_options o;
	sm_est_input in;
	sm_estimate e;
	sm_error err = {0};
	FILE *f;

	(void)state;
	sm_mock_options_init(&mo);
	mo.gas = 20000;
	mo.halos = 6;
	mo.small_halos = 5;   /* 11 groups over catalogue chunks of 4, 0, 4, 3 */
	mo.files = 8;
	assert_int_equal(sm_mock_write(dir, &mo, &err), 0);
	sm_model_options_init(&o);
	assert_int_equal(sm_est_input_from_base(&in, dir, 99, &o, &err), 0);
	assert_int_equal(in.groups_total, 11);
	assert_int_equal(in.groups_chunk_max, 4);
	/* one process: the whole catalogue */
	assert_int_equal(sm_estimate_compute(&in, &o, &e, &err), 0);
	assert_int_equal(stage(&e, "load_halos")->peak, 20 * 11 + 48 * in.nhalos);
	sm_estimate_release(&e);
	/* a rank of the distributed run: one chunk */
	o.ranks = 2;
	assert_int_equal(sm_estimate_compute(&in, &o, &e, &err), 0);
	assert_int_equal(stage(&e, "load_halos")->peak, 20 * 4 + 48 * in.nhalos);
	assert_int_equal(array(stage(&e, "load_halos"), "Group_R_Crit200")->requested, 16);
	sm_estimate_release(&e);
	sm_est_input_release(&in);
	o.ranks = 1;
	/* --halos N: the same Gc */
	o.halos = 2;
	assert_int_equal(sm_est_input_from_base(&in, dir, 99, &o, &err), 0);
	assert_int_equal(in.nhalos, 2);
	assert_int_equal(in.groups_chunk_max, 4);
	sm_est_input_release(&in);
	/* a chunk that is not an HDF5 file */
	snprintf(path, sizeof(path), "%s/groups_099/fof_subhalo_tab_099.3.hdf5", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("not hdf5\n", f);
	fclose(f);
	assert_true(sm_est_input_from_base(&in, dir, 99, &o, &err) < 0);
	assert_non_null(strstr(err.msg, path));
	/* missing */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(sm_est_input_from_base(&in, dir, 99, &o, &err), SM_ENOTFOUND);
	assert_non_null(strstr(err.msg, path));
	tu_rmtree(dir);
	free(dir);
}

static void test_write_atomic(void **state)
{
	char *dir = tu_tmpdir(), *p = tu_path(dir, "out.json"), *bad = tu_path(dir, "no/such/x");
	sm_est_input in;
	sm_model_options o;
	sm_estimate e;
	sm_error err = {0};
	char *got;

	(void)state;
	sm_model_options_init(&o);
	assert_int_equal(sm_est_input_embedded(&in, &o, &err), 0);
	assert_int_equal(sm_estimate_compute(&in, &o, &e, &err), 0);
	assert_int_equal(sm_estimate_write_json(&in, &e, NULL, NULL, p, &err), 0);
	got = tu_read_file(p, NULL);
	assert_non_null(strstr(got, "snapmem.estimate/1"));
	free(got);
	assert_int_equal(sm_est_write_text(bad, "x", &err), SM_EIO);
	assert_false(tu_exists(bad));
	assert_int_equal(sm_est_write_text(p, "replaced\n", &err), 0);
	got = tu_read_file(p, NULL);
	assert_string_equal(got, "replaced\n");
	free(got);
	sm_estimate_release(&e);
	sm_est_input_release(&in);
	free(bad);
	free(p);
	tu_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_formulas_f32_index_mem),
		cmocka_unit_test(test_formulas_f64_index_mem),
		cmocka_unit_test(test_formulas_f32_mask_mem),
		cmocka_unit_test(test_formulas_f64_mask_mem),
		cmocka_unit_test(test_formulas_f32_index_stream),
		cmocka_unit_test(test_formulas_f64_index_stream),
		cmocka_unit_test(test_formulas_f32_mask_stream),
		cmocka_unit_test(test_formulas_f64_mask_stream),
		cmocka_unit_test(test_grid_and_index_width),
		cmocka_unit_test(test_tng300_exact),
		cmocka_unit_test(test_overflow),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_override_and_ranks),
		cmocka_unit_test(test_calibrate),
		cmocka_unit_test(test_alternatives),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_write_atomic),
		cmocka_unit_test(test_mpi_f32),
		cmocka_unit_test(test_mpi_f64),
		cmocka_unit_test(test_mpi_edges),
		cmocka_unit_test(test_halo_grid_side),
		cmocka_unit_test(test_assign_chunks),
		cmocka_unit_test(test_node_fit),
		cmocka_unit_test(test_mpi_tng300),
		cmocka_unit_test(test_groups_chunk_max),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
