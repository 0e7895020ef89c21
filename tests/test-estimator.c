/*
 * The estimator's model through its API: every stage's formula of docs/MODEL.md for both positions
 * dtypes, both selects and both temperature modes (recomputed here independently from the formulas,
 * not from the code), allocated = sm_prof_nallocx of each request, the TNG300-1 exact figures,
 * overflow, sphere-cell override/calibration/model, ranks, node-fit alternatives, estimate.json keys
 * and the atomic writer.
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
	assert_int_equal(o.stream_block, 1048576);
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

	/* Four ranks: each holds ceil(N / 4) cells and the full halo tables. */
	o.ranks = 4;
	n = in.header.npart_total[0];
	assert_int_equal(sm_estimate_compute(&in, &o, &e4, &err), 0);
	assert_int_equal(array(stage(&e4, "load_gas_fields"), "InternalEnergy")->count,
			 (n + 3) / 4);
	assert_int_equal(array(stage(&e4, "load_halos"), "Group_M_Crit200")->count, 17625892);
	assert_true(e4.peak * 3 < e.peak);
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
	assert_int_equal(n, 2 * 2 * 4);
	for (i = 1; i < n; i++)
		assert_true(alts[i - 1].peak_total <= alts[i].peak_total);
	for (i = 0; i < n; i++) {
		assert_int_equal(alts[i].fits, alts[i].peak_total <= (UINT64_C(300) << 30));
		/* float32 positions fit 300 GiB, float64 do not (3 x 8 x N alone is 323 GiB) */
		assert_int_equal(alts[i].fits, alts[i].options.positions == SM_DTYPE_F32);
	}
	free(alts);
	assert_int_equal(sm_est_ranks_needed(&in, &o, UINT64_C(128) << 30, &r, &err), 0);
	assert_int_equal(r, 2);
	assert_int_equal(sm_est_ranks_needed(&in, &o, 1024, &r, &err), 0);
	assert_int_equal(r, 0);  /* the baseline alone does not fit */
	sm_est_input_release(&in);
}

static void test_json(void **state)
{
	sm_est_input in;
	sm_model_options o;
	sm_estimate e;
	sm_error err = {0};
	char *text;
	json_t *root, *st, *arr;
	json_error_t jerr;

	(void)state;
	sm_model_options_init(&o);
	assert_int_equal(sm_est_input_embedded(&in, &o, &err), 0);
	assert_int_equal(sm_estimate_compute(&in, &o, &e, &err), 0);
	text = sm_estimate_json(&in, &e, UINT64_C(1) << 40);
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
	assert_int_equal(json_array_size(json_object_get(root, "alternatives")), 16);
	assert_true(json_array_size(json_object_get(root, "documented")) >= 10);
	assert_true(json_array_size(json_object_get(json_object_get(root, "halos"), "assumptions")) >= 4);
	assert_int_equal(json_array_size(json_object_get(json_object_get(root, "halos"), "per_halo")),
			 280);
	assert_int_equal(json_integer_value(json_object_get(root, "baseline_bytes")),
			 (json_int_t)sm_est_baseline_bytes());
	json_decref(root);
	free(text);

	text = sm_tradeoff_json(&in, &o, &err);
	assert_non_null(text);
	root = json_loads(text, 0, &jerr);
	assert_non_null(root);
	assert_string_equal(json_string_value(json_object_get(root, "schema")), "snapmem.tradeoff/1");
	assert_int_equal(json_array_size(json_object_get(root, "variants")), 8);
	json_decref(root);
	free(text);
	sm_estimate_release(&e);
	sm_est_input_release(&in);
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
	assert_int_equal(sm_estimate_write_json(&in, &e, 0, p, &err), 0);
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
