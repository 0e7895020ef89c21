/*
 * The distributed strategy (docs/MPI.md) through the library, without MPI: one rank (comm NULL),
 * and 2 or 3 ranks as forked processes joined by a test communicator over shared memory (process-
 * shared barriers), so that the work split, the reduction and the agreement points run as they do
 * under mpirun, sanitizer builds included. Checks: counts, sf_counts and hist2d bit-identical to
 * the serial run (means within 1e-12 relative), float32 and float64, several block sizes; every
 * stage's requested bytes equal to docs/MPI.md's formulas (and to the estimator's, when it models
 * the distributed run); the chunk assignment; every error path (a bad chunk file on one rank,
 * --max-mem, cancellation, allocation failure, a full disk under rank 0's rows, --ranks mismatch,
 * --select mask and --temperature
 * streaming with --mpi), each stopping every rank with the failing rank's error and no file left.
 * load_halos reads the catalogue chunk by chunk: the mock's catalogue has unequal chunks and an
 * empty one, so Gc (the largest chunk's Ngroups_ThisFile, read here from the headers) < G; the
 * selection equals the serial run's halo for halo (--halos N and --mass-min, ties across chunks,
 * NaN masses), as do its errors (a bad group or a broken catalogue in a later chunk).
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <hdf5.h>

#include "pipeline/distributed.h"
#include "snapmem/estimator.h"
#include "snapmem/mock.h"
#include "snapmem/pipeline.h"
#include "snapmem/profiler.h"
#include "snapmem/snapshot.h"

#include "util.h"

#define NGAS 200000u
#define NHALOS 7u   /* and as many small ones: 14 groups in catalogue chunks of 4, 0, 4, 3, 3 */
#define NFILES 10u  /* the catalogue gets NFILES / 2 chunk files, chunk 1 empty */
#define MAXCAT 16
#define RB SM_MODEL_RBINS
#define TB SM_MODEL_TBINS
#define HB SM_MODEL_HISTOGRAM_BYTES

static struct {
	char *dir;
	uint64_t n, g, gc;             /* gas cells, groups, the largest catalogue chunk's groups */
	uint64_t cat_n[MAXCAT];        /* every catalogue chunk's Ngroups_ThisFile */
	int ncat;
	double box, h;
} W;

/* Ngroups_ThisFile of catalogue chunk i under base (HDF5 directly, not the library); -1 when the
 * file is absent. */
static int64_t cat_chunk_groups(const char *base, int i)
{
	char path[4096];
	hid_t f, a;
	int64_t v = -1;

	snprintf(path, sizeof(path), "%s/groups_099/fof_subhalo_tab_099.%d.hdf5", base, i);
	if (access(path, F_OK) != 0)
		return -1;
	f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	assert_true(f >= 0);
	a = H5Aopen_by_name(f, "Header", "Ngroups_ThisFile", H5P_DEFAULT, H5P_DEFAULT);
	assert_true(a >= 0);
	assert_true(H5Aread(a, H5T_NATIVE_INT64, &v) >= 0);
	H5Aclose(a);
	H5Fclose(f);
	return v;
}

static int setup(void **state)
{
	sm_mock_options mo;
	sm_error err;
	sm_catalog c;
	sm_snapshot s;

	(void)state;
	memset(&W, 0, sizeof(W));
	W.dir = tu_tmpdir();
	sm_mock_options_init(&mo);
	mo.gas = NGAS;
	mo.halos = NHALOS;
	mo.small_halos = NHALOS;
	mo.files = NFILES;
	mo.seed = 11;
	if (sm_mock_write(W.dir, &mo, &err) != 0)
		fail_msg("mock: %s", err.msg);
	memset(&s, 0, sizeof(s));
	memset(&c, 0, sizeof(c));
	assert_int_equal(sm_snapshot_open_base(&s, W.dir, 99, &err), 0);
	W.n = s.header.npart_total[0];
	W.box = s.header.box_size;
	W.h = s.header.hubble_param;
	sm_snapshot_release(&s);
	assert_int_equal(sm_catalog_open_base(&c, W.dir, 99, &err), 0);
	W.g = c.ngroups_total;
	sm_catalog_release(&c);
	for (W.ncat = 0; W.ncat < MAXCAT; W.ncat++) {
		int64_t ng = cat_chunk_groups(W.dir, W.ncat);

		if (ng < 0)
			break;
		W.cat_n[W.ncat] = (uint64_t)ng;
		if ((uint64_t)ng > W.gc)
			W.gc = (uint64_t)ng;
	}
	/* What the tests rely on: unequal chunks, an empty one, Gc < G. */
	assert_int_equal(W.ncat, NFILES / 2);
	assert_int_equal(W.g, 2 * NHALOS);
	assert_int_equal(W.cat_n[1], 0);
	assert_int_equal(W.gc, 4);
	assert_true(W.cat_n[0] != W.cat_n[W.ncat - 1]);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmtree(W.dir);
	free(W.dir);
	return 0;
}

/* ---- profiles.hdf5 -------------------------------------------------------------------------- */

static int64_t root_int_attr(const char *path, const char *name)
{
	hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), a;
	int64_t v = -1;

	assert_true(f >= 0);
	a = H5Aopen_by_name(f, "/", name, H5P_DEFAULT, H5P_DEFAULT);
	assert_true(a >= 0);
	assert_true(H5Aread(a, H5T_NATIVE_INT64, &v) >= 0);
	H5Aclose(a);
	H5Fclose(f);
	return v;
}

static int rel_close(double a, double b, double tol)
{
	if (isnan(a) || isnan(b))
		return isnan(a) && isnan(b);
	return fabs(a - b) <= tol * fabs(b);
}

static void assert_same_profiles(const tu_profiles *a, const tu_profiles *b)
{
	uint64_t i;

	assert_int_equal(a->k, b->k);
	assert_true(a->k > 0);
	assert_memory_equal(a->group, b->group, a->k * 8);
	assert_memory_equal(a->center, b->center, a->k * 24);
	assert_memory_equal(a->r200, b->r200, a->k * 8);
	assert_memory_equal(a->m200, b->m200, a->k * 8);
	assert_memory_equal(a->counts, b->counts, a->k * RB * 8);
	assert_memory_equal(a->sf, b->sf, a->k * RB * 8);
	assert_memory_equal(a->h2, b->h2, a->k * RB * TB * 8);
	for (i = 0; i < a->k * RB; i++)
		if (!rel_close(a->mean[i], b->mean[i], 1e-12))
			fail_msg("mean_temperature[%llu]: %.17g vs %.17g", (unsigned long long)i,
				 a->mean[i], b->mean[i]);
}

/* ---- runs ------------------------------------------------------------------------------------ */

static void model(sm_model_options *mo, const char *pos, const char *block)
{
	sm_error err;

	sm_model_options_init(mo);
	assert_int_equal(sm_model_option_apply(mo, "--positions", pos, &err), 1);
	if (block != NULL)
		assert_int_equal(sm_model_option_apply(mo, "--stream-block", block, &err), 1);
}

static void options(sm_pipeline_options *o, const sm_model_options *mo, const char *base,
		    const char *out)
{
	sm_pipeline_options_init(o);
	o->base_path = base;
	o->snap = 99;
	o->model = *mo;
	o->out_dir = out;
}

/* The serial run's profiles (select index, in-memory) for the same positions and selection
 * (halos: --halos N, -1 for --mass-min's default) on base. */
static void serial_profiles_at(const char *base, int64_t halos, const char *pos,
			       tu_profiles *po, sm_pipeline_result *r)
{
	sm_model_options mo;
	sm_pipeline_options o;
	sm_error err;
	char *out = tu_tmpdir(), *pp;

	model(&mo, pos, NULL);
	mo.halos = halos;
	options(&o, &mo, base, out);
	if (sm_pipeline_run(&o, NULL, r, &err) != 0)
		fail_msg("serial: %s", err.msg);
	pp = tu_path(out, "profiles.hdf5");
	tu_profiles_read(pp, po);
	free(pp);
	tu_rmtree(out);
	free(out);
}

/* ---- the pure parts ------------------------------------------------------------------------ */

static void test_halo_grid_side(void **state)
{
	(void)state;
	assert_int_equal(sm_model_halo_grid_side(75000, 0), 1);
	assert_int_equal(sm_model_halo_grid_side(75000, -1), 1);
	assert_int_equal(sm_model_halo_grid_side(75000, NAN), 1);
	assert_int_equal(sm_model_halo_grid_side(NAN, 10), 1);
	assert_int_equal(sm_model_halo_grid_side(0, 10), 1);
	assert_int_equal(sm_model_halo_grid_side(100, 200), 1);
	/* floor(100 / (2 (10 + 0.001))) = floor(4.9995) */
	assert_int_equal(sm_model_halo_grid_side(100, 10), 4);
	/* exactly 2 cells wide but for the margin */
	assert_int_equal(sm_model_halo_grid_side(100, 25), 1);
	assert_int_equal(sm_model_halo_grid_side(100, 24.99), 2);
	assert_int_equal(sm_model_halo_grid_side(75000, 1), 64);
	/* TNG300-1's largest halo: R200 ~ 1.8 Mpc/h -> s_max ~ 3,600 ckpc/h in a 205,000 box */
	assert_int_equal(sm_model_halo_grid_side(205000, 3600), 28);
}

static void test_assign_chunks(void **state)
{
	const uint64_t cells[6] = {5, 0, 9, 9, 3, 7};
	int32_t owner[6];
	uint64_t rc[3];
	sm_error err;

	(void)state;
	/* by cells: f2 9, f3 9 (tie: lower file first), f5 7, f0 5, f4 3; f1 has no gas */
	assert_int_equal(sm_model_assign_chunks(cells, 6, 2, rc, owner, &err), 0);
	assert_int_equal(owner[2], 0);
	assert_int_equal(owner[3], 1);
	assert_int_equal(owner[5], 0);   /* 9 vs 9: lowest rank */
	assert_int_equal(owner[0], 1);   /* 16 vs 9 */
	assert_int_equal(owner[4], 1);   /* 16 vs 14 */
	assert_int_equal(owner[1], -1);
	assert_int_equal(rc[0], 16);
	assert_int_equal(rc[1], 17);
	assert_int_equal(sm_model_assign_chunks(cells, 6, 1, NULL, owner, &err), 0);
	assert_int_equal(owner[0], 0);
	assert_int_equal(owner[1], -1);
	assert_int_equal(owner[4], 0);
	{
		const uint64_t two[2] = {4, 4};

		assert_int_equal(sm_model_assign_chunks(two, 2, 3, rc, owner, &err), 0);
		assert_int_equal(owner[0], 0);
		assert_int_equal(owner[1], 1);
		assert_int_equal(rc[2], 0);
	}
	assert_int_equal(sm_model_assign_chunks(cells, 0, 2, rc, owner, &err), 0);
	assert_int_equal(sm_model_assign_chunks(cells, 6, 0, rc, owner, &err), SM_EINVAL);
	assert_int_equal(sm_model_assign_chunks(NULL, 6, 2, rc, owner, &err), SM_EINVAL);
	/* both outputs are optional: the loads alone */
	assert_int_equal(sm_model_assign_chunks(cells, 6, 2, rc, NULL, &err), 0);
	assert_int_equal(rc[0], 16);
	assert_int_equal(rc[1], 17);
	assert_int_equal(sm_model_assign_chunks(cells, (size_t)INT32_MAX + 1, 2, rc, owner, &err),
			 SM_EINVAL);
}

static void test_rank_files(void **state)
{
	uint32_t ranks, q;
	sm_error err;
	int64_t *files;
	size_t nf;
	uint64_t cells;

	(void)state;
	for (ranks = 1; ranks <= 4; ranks++) {
		int seen[NFILES] = {0};
		uint64_t total = 0;

		for (q = 0; q < ranks; q++) {
			size_t i;

			assert_int_equal(sm_pipeline_rank_files(W.dir, 99, q, ranks, &files, &nf,
								&cells, &err), 0);
			for (i = 0; i < nf; i++) {
				assert_true(files[i] >= 0 && files[i] < (int64_t)NFILES);
				assert_int_equal(seen[files[i]], 0);
				seen[files[i]] = 1;
				if (i > 0)
					assert_true(files[i] > files[i - 1]);
			}
			total += cells;
			free(files);
		}
		assert_int_equal(total, W.n);
	}
	assert_int_equal(sm_pipeline_rank_files(W.dir, 99, 2, 2, &files, &nf, &cells, &err),
			 SM_EINVAL);
	assert_null(files);
	assert_int_equal(sm_pipeline_rank_files("/nonexistent/x", 99, 0, 2, &files, &nf, &cells,
						&err), SM_ENOTFOUND);
	assert_non_null(strstr(err.msg, "/nonexistent/x"));
}

/* ---- one rank (comm NULL) against the serial run -------------------------------------------- */

/* The distributed run with one rank on base (n gas cells) against the serial run: the same
 * profiles. */
static void one_rank_vs_serial_at(const char *base, uint64_t n, const char *pos, const char *block)
{
	tu_profiles a, b;
	sm_pipeline_result ra, rb;
	sm_model_options mo;
	sm_pipeline_options o;
	sm_error err;
	char *out = tu_tmpdir(), *pp;
	uint64_t h;

	serial_profiles_at(base, -1, pos, &a, &ra);
	model(&mo, pos, block);
	mo.mpi = 1;
	options(&o, &mo, base, out);
	if (sm_pipeline_run_distributed(&o, NULL, NULL, &rb, &err) != 0)
		fail_msg("distributed: %s", err.msg);
	pp = tu_path(out, "profiles.hdf5");
	assert_string_equal(rb.profiles_path, pp);
	assert_string_equal(rb.stage, "");
	tu_profiles_read(pp, &b);
	assert_same_profiles(&a, &b);
	assert_int_equal(root_int_attr(pp, "mpi"), 1);
	assert_int_equal(root_int_attr(pp, "ranks"), 1);
	assert_int_equal(rb.nhalos, ra.nhalos);
	assert_int_equal(rb.gas_cells, n);
	for (h = 0; h < ra.nhalos; h++) {
		assert_int_equal(rb.halos[h].group_index, ra.halos[h].group_index);
		assert_int_equal(rb.halos[h].sphere_cells, ra.halos[h].sphere_cells);
	}
	assert_true(rb.grid_side >= 1 && rb.grid_side <= 64);
	free(pp);
	tu_profiles_free(&a);
	tu_profiles_free(&b);
	sm_pipeline_result_release(&ra);
	sm_pipeline_result_release(&rb);
	tu_rmtree(out);
	free(out);
}

static void one_rank_vs_serial(const char *pos, const char *block)
{
	one_rank_vs_serial_at(W.dir, W.n, pos, block);
}

static void test_one_rank_equals_serial(void **state)
{
	(void)state;
	one_rank_vs_serial("float32", NULL);
	one_rank_vs_serial("float64", NULL);
	one_rank_vs_serial("float32", "7777");
	one_rank_vs_serial("float64", "61");
}

/* ---- requested bytes, stage by stage -------------------------------------------------------- */

struct expect {
	uint64_t peak[4], live[4];
};

static const char *const stage_ids[4] = {"load_halos", "build_index", "stream_cells",
					 "histogram_write"};

/* docs/MPI.md's formulas, from the run's K, its halos' R200 and the options. */
static void expected(uint64_t k, const sm_pipeline_halo *halos, uint64_t psz, uint64_t block,
		     struct expect *x)
{
	double smax = 0;
	uint64_t h, hg, hg3, idx, b = block < W.n ? block : W.n;

	for (h = 0; h < k; h++)
		if (2.0 * halos[h].r200 > smax)
			smax = 2.0 * halos[h].r200;
	hg = k > 0 ? sm_model_halo_grid_side(W.box, smax) : 1;
	hg3 = hg * hg * hg;
	idx = 4 * (hg3 + 1) + 4 * k * (hg3 < 8 ? hg3 : 8);
	x->peak[0] = 20 * W.gc + 48 * k;   /* one catalogue chunk's columns at a time */
	x->live[0] = 48 * k;
	x->peak[1] = x->live[1] = 48 * k + idx;
	x->live[2] = 48 * k + idx + 25200 * k;
	x->peak[2] = x->live[2] + (b > 0 ? b * (16 + 3 * psz) + (psz == 4 ? 1048576 : 0) : 0);
	x->peak[3] = x->live[2];
	x->live[3] = 48 * k;
}

/* Checks p's top-level stages and arrays against the formulas. */
static void check_stages(sm_prof *p, const struct expect *x, uint64_t k, uint64_t psz,
			 uint64_t block)
{
	static const char *const names[] = {
		"Group_M_Crit200", "Group_R_Crit200", "GroupPos", "halo_index", "halo_center",
		"halo_m200", "halo_r200", "halo_grid_start", "halo_grid_halos", "profile_sums",
		"InternalEnergy", "ElectronAbundance", "StarFormationRate", "temperature",
		"Coordinates", "io_buffer"};
	size_t i, n = sm_prof_stage_count(p), j = 0, na = sm_prof_array_count(p);
	uint64_t b = block < W.n ? block : W.n;

	for (i = 0; i < n; i++) {
		sm_prof_stage_info st;

		assert_int_equal(sm_prof_stage_get(p, i, &st), 0);
		if (st.depth != 0)
			continue;
		assert_true(j < 4);
		assert_string_equal(st.id, stage_ids[j]);
		assert_int_equal(st.instance, -1);
		if (st.requested_peak != x->peak[j] || st.requested_live_end != x->live[j])
			fail_msg("stage %s: measured peak %llu live %llu, docs/MPI.md %llu live %llu",
				 st.id, (unsigned long long)st.requested_peak,
				 (unsigned long long)st.requested_live_end,
				 (unsigned long long)x->peak[j], (unsigned long long)x->live[j]);
		j++;
	}
	assert_int_equal(j, 4);
	assert_int_equal(na, psz == 4 ? 16 : 15);
	for (i = 0; i < na; i++) {
		sm_prof_array_info a;
		uint64_t want;

		assert_int_equal(sm_prof_array_get(p, i, &a), 0);
		assert_string_equal(a.name, names[i]);
		assert_false(a.live);
		switch (i) {
		case 0: case 1: want = 4 * W.gc; break;
		case 2: want = 12 * W.gc; break;
		case 3: case 5: case 6: want = 8 * k; break;
		case 4: want = 24 * k; break;
		case 9: want = 25200 * k; break;
		case 10: case 11: case 12: case 13: want = 4 * b; break;
		case 14: want = 3 * psz * b; break;
		case 15: want = 1048576; break;
		default: want = a.requested; break; /* the index: in the stage figures */
		}
		assert_int_equal(a.requested, want);
		assert_string_equal(a.stage, i < 7 ? "load_halos" : i < 9 ? "build_index"
									: "stream_cells");
	}
	assert_int_equal(sm_prof_live_requested(p), 0);
}

/* The estimator's figures for the same run, when it models the distributed strategy. */
static void check_estimator(const sm_model_options *mo, const sm_pipeline_result *r,
			    const struct expect *x)
{
	sm_est_input in;
	sm_estimate e;
	sm_error err;
	size_t si, j, matched = 0;
	uint64_t h;

	assert_int_equal(sm_est_input_from_base(&in, W.dir, 99, mo, &err), 0);
	assert_int_equal(in.nhalos, r->nhalos);
	for (h = 0; h < in.nhalos; h++)
		in.halos[h].sphere_cells = r->halos[h].sphere_cells;
	assert_int_equal(sm_estimate_compute(&in, mo, &e, &err), 0);
	for (si = 0; si < e.nstages; si++)
		for (j = 0; j < 4; j++) {
			if (strcmp(e.stages[si].id, stage_ids[j]) != 0)
				continue;
			matched++;
			if (e.stages[si].peak != x->peak[j] || e.stages[si].live_after != x->live[j])
				fail_msg("estimator stage %s: peak %llu live %llu, measured %llu "
					 "live %llu", stage_ids[j],
					 (unsigned long long)e.stages[si].peak,
					 (unsigned long long)e.stages[si].live_after,
					 (unsigned long long)x->peak[j],
					 (unsigned long long)x->live[j]);
		}
	if (matched < 4)
		print_message("the estimator does not model every distributed stage yet (%zu of 4)\n",
			      matched);
	sm_estimate_release(&e);
	sm_est_input_release(&in);
}

static void requested_bytes(const char *pos, const char *block, double mass_min)
{
	sm_model_options mo;
	sm_pipeline_options o;
	sm_pipeline_result r;
	sm_prof_options popt;
	sm_prof *p = NULL;
	sm_error err;
	struct expect x;
	char *out = tu_tmpdir();
	uint64_t psz = strcmp(pos, "float32") == 0 ? 4 : 8;

	model(&mo, pos, block);
	mo.mpi = 1;
	if (mass_min > 0)
		mo.mass_min = mass_min;
	sm_prof_options_init(&popt);
	popt.timeline_hz = 0;
	assert_int_equal(sm_prof_create(&popt, &p, &err), 0);
	options(&o, &mo, W.dir, out);
	if (sm_pipeline_run_distributed(&o, NULL, p, &r, &err) != 0)
		fail_msg("distributed: %s", err.msg);
	expected(r.nhalos, r.halos, psz, mo.stream_block, &x);
	check_stages(p, &x, r.nhalos, psz, mo.stream_block);
	check_estimator(&mo, &r, &x);
	sm_pipeline_result_release(&r);
	sm_prof_free(p);
	tu_rmtree(out);
	free(out);
}

static void test_requested_bytes(void **state)
{
	(void)state;
	requested_bytes("float32", NULL, 0);
	requested_bytes("float64", NULL, 0);
	requested_bytes("float32", "50000", 0);
	requested_bytes("float64", "1013", 0);
	requested_bytes("float32", NULL, 1e20); /* no halo: K = 0 */
}

static void test_empty_selection(void **state)
{
	sm_model_options mo;
	sm_pipeline_options o;
	sm_pipeline_result r;
	sm_error err;
	tu_profiles po;
	char *out = tu_tmpdir(), *pp;

	(void)state;
	model(&mo, "float32", NULL);
	mo.mass_min = 1e20;
	options(&o, &mo, W.dir, out);
	assert_int_equal(sm_pipeline_run_distributed(&o, NULL, NULL, &r, &err), 0);
	assert_true(r.empty);
	assert_int_equal(r.nhalos, 0);
	assert_int_equal(r.grid_side, 1);
	pp = tu_path(out, "profiles.hdf5");
	tu_profiles_read(pp, &po);
	assert_int_equal(po.k, 0);
	tu_profiles_free(&po);
	free(pp);
	sm_pipeline_result_release(&r);
	tu_rmtree(out);
	free(out);
}

/* ---- failures on one rank -------------------------------------------------------------------- */

/* Copies the mock and overwrites one value of one dataset in snapshot chunk `chunk`. */
static char *corrupt_copy(const char *src, int chunk, const char *dataset, hsize_t row,
			  hsize_t col, double value, char *file_out, size_t len)
{
	char *dir = tu_tmpdir(), cmd[8192];
	hid_t file, d, s, ms;
	hsize_t start[2] = {row, col}, one[2] = {1, 1};

	snprintf(cmd, sizeof(cmd), "cp -r '%s'/. '%s'/", src, dir);
	assert_int_equal(system(cmd), 0);
	snprintf(file_out, len, "%s/snapdir_099/snap_099.%d.hdf5", dir, chunk);
	file = H5Fopen(file_out, H5F_ACC_RDWR, H5P_DEFAULT);
	assert_true(file >= 0);
	d = H5Dopen2(file, dataset, H5P_DEFAULT);
	assert_true(d >= 0);
	s = H5Dget_space(d);
	ms = H5Screate_simple(1, one, NULL);
	assert_true(H5Sselect_hyperslab(s, H5S_SELECT_SET, start, NULL, one, NULL) >= 0);
	assert_true(H5Dwrite(d, H5T_NATIVE_DOUBLE, ms, s, H5P_DEFAULT, &value) >= 0);
	H5Sclose(ms);
	H5Sclose(s);
	H5Dclose(d);
	H5Fclose(file);
	return dir;
}

static char *corrupt_chunk(int chunk, const char *dataset, hsize_t row, hsize_t col, double value,
			   char *file_out, size_t len)
{
	return corrupt_copy(W.dir, chunk, dataset, row, col, value, file_out, len);
}

/* The chunk holding gas that rank q of `ranks` streams first. */
static int chunk_of_rank(uint32_t q, uint32_t ranks)
{
	int64_t *files;
	size_t nf;
	uint64_t cells;
	sm_error err;
	int c;

	assert_int_equal(sm_pipeline_rank_files(W.dir, 99, q, ranks, &files, &nf, &cells, &err), 0);
	assert_true(nf > 0);
	c = (int)files[0];
	free(files);
	return c;
}

static int run1(const sm_model_options *mo, const char *base, sm_prof *p, uint64_t max_mem,
		volatile sig_atomic_t *cancel, sm_pipeline_progress_fn cb, char **out,
		sm_pipeline_result *r, sm_error *err)
{
	sm_pipeline_options o;

	sm_error_clear(err);
	*out = tu_tmpdir();
	options(&o, mo, base, *out);
	o.max_mem = max_mem;
	o.cancel = cancel;
	o.progress = cb;
	o.progress_ctx = (void *)cancel;
	return sm_pipeline_run_distributed(&o, NULL, p, r, err);
}

static void done_run(sm_pipeline_result *r, char *out)
{
	assert_int_equal(tu_entries(out), 0); /* no profiles.hdf5, no temporary */
	sm_pipeline_result_release(r);
	tu_rmtree(out);
	free(out);
}

#define BLOCK_MOCK_CELLS 300000u

/* A mock whose one chunk file holds BLOCK_MOCK_CELLS cells (5 halos, seed 3): one block of the
 * default size, read in one pass as 37 runs of 8,192 cells (the last 5,696). */
static char *block_mock(void)
{
	sm_mock_options mk;
	sm_error err;
	char *dir = tu_tmpdir();

	sm_mock_options_init(&mk);
	mk.gas = BLOCK_MOCK_CELLS;
	mk.halos = 5;
	mk.files = 1;
	mk.seed = 3;
	if (sm_mock_write(dir, &mk, &err) != 0)
		fail_msg("mock: %s", err.msg);
	return dir;
}

/*
 * A block of 300,000 cells (one chunk file): the serial run's profiles; and a bad value deep in it
 * (an InternalEnergy, a Coordinate), which stops the direct read's run and leaves the block to
 * the field-by-field reads, is the serial run's error, word for word.
 */
static void test_block_parts(void **state)
{
	static const struct {
		const char *dataset;
		hsize_t row, col;
		double v;
		const char *what;
	} bad[2] = {{"/PartType0/InternalEnergy", 270000, 0, -1.0, "InternalEnergy[270000]"},
		    {"/PartType0/Coordinates", 290001, 2, NAN, "Coordinates[290001]"}};
	sm_model_options mo;
	sm_pipeline_options o;
	sm_pipeline_result ra, rb;
	sm_error err, e1;
	char *dir = block_mock(), *out, *cdir, file[4096];
	int i;

	(void)state;
	one_rank_vs_serial_at(dir, BLOCK_MOCK_CELLS, "float32", NULL);
	model(&mo, "float32", NULL);
	mo.mpi = 1;
	for (i = 0; i < 2; i++) {
		sm_model_options ms;

		cdir = corrupt_copy(dir, 0, bad[i].dataset, bad[i].row, bad[i].col, bad[i].v, file,
				    sizeof(file));
		model(&ms, "float32", NULL);
		out = tu_tmpdir();
		options(&o, &ms, cdir, out);
		assert_int_equal(sm_pipeline_run(&o, NULL, &ra, &e1), SM_EFORMAT);
		sm_pipeline_result_release(&ra);
		tu_rmtree(out);
		free(out);
		assert_int_equal(run1(&mo, cdir, NULL, 0, NULL, NULL, &out, &rb, &err), SM_EFORMAT);
		if (strstr(err.msg, bad[i].what) == NULL || strcmp(err.msg, e1.msg) != 0)
			fail_msg("distributed: '%s'; serial: '%s'", err.msg, e1.msg);
		done_run(&rb, out);
		tu_rmtree(cdir);
		free(cdir);
	}
	tu_rmtree(dir);
	free(dir);
}

/*
 * The one-pass read adds each range's records as it is made; when a later range's read fails
 * (sm__pl_fail_read_range, the tests' hook) the block is read field by field, and the records of
 * the ranges some owner had already added are made again and added from where each owner stopped:
 * the profiles are bit for bit those of a run whose reads never fail, whichever range fails
 * (the first: nothing added yet; one in the middle; the last; none).
 */
static void test_read_fails_after_adds(void **state)
{
	static const unsigned fail_at[] = {1, 2, 19, 37, 1000};
	sm_model_options mo;
	sm_pipeline_options o;
	sm_pipeline_result r;
	sm_error err;
	tu_profiles a, b;
	char *dir = block_mock(), *out, *pp;
	size_t i;

	(void)state;
	model(&mo, "float32", NULL);
	mo.mpi = 1;
	for (i = 0; i <= sizeof(fail_at) / sizeof(fail_at[0]); i++) {
		out = tu_tmpdir();
		options(&o, &mo, dir, out);
		sm__pl_fail_read_range = i == 0 ? 0 : fail_at[i - 1];
		if (sm_pipeline_run_distributed(&o, NULL, NULL, &r, &err) != 0)
			fail_msg("failing range %u: %s", sm__pl_fail_read_range, err.msg);
		sm__pl_fail_read_range = 0;
		pp = tu_path(out, "profiles.hdf5");
		tu_profiles_read(pp, i == 0 ? &a : &b);
		if (i > 0) {
			assert_same_profiles(&a, &b);
			assert_memory_equal(a.mean, b.mean, a.k * RB * 8);
			tu_profiles_free(&b);
		}
		free(pp);
		sm_pipeline_result_release(&r);
		tu_rmtree(out);
		free(out);
	}
	tu_profiles_free(&a);
	tu_rmtree(dir);
	free(dir);
}

static void test_bad_chunk(void **state)
{
	sm_model_options mo;
	sm_pipeline_result r;
	sm_error err;
	char file[4096], *dir, *out;
	int c = chunk_of_rank(0, 1);

	(void)state;
	model(&mo, "float32", "1000");
	dir = corrupt_chunk(c, "/PartType0/InternalEnergy", 5, 0, NAN, file, sizeof(file));
	assert_int_equal(run1(&mo, dir, NULL, 0, NULL, NULL, &out, &r, &err), SM_EFORMAT);
	assert_non_null(strstr(err.msg, file));
	assert_non_null(strstr(err.msg, "InternalEnergy[5]"));
	assert_null(strstr(err.msg, "rank")); /* one rank: no rank prefix */
	assert_string_equal(r.stage, "stream_cells");
	done_run(&r, out);
	tu_rmtree(dir);
	free(dir);

	dir = corrupt_chunk(c, "/PartType0/Coordinates", 3, 1, INFINITY, file, sizeof(file));
	mo.positions = SM_DTYPE_F64;
	assert_int_equal(run1(&mo, dir, NULL, 0, NULL, NULL, &out, &r, &err), SM_EFORMAT);
	assert_non_null(strstr(err.msg, file));
	assert_non_null(strstr(err.msg, "Coordinates[3]"));
	done_run(&r, out);
	tu_rmtree(dir);
	free(dir);

	/* A missing chunk file: every rank finds it while opening the snapshot. */
	dir = corrupt_chunk(c, "/PartType0/InternalEnergy", 0, 0, 1.0, file, sizeof(file));
	snprintf(file, sizeof(file), "%s/snapdir_099/snap_099.%u.hdf5", dir, NFILES - 1);
	assert_int_equal(unlink(file), 0);
	assert_int_equal(run1(&mo, dir, NULL, 0, NULL, NULL, &out, &r, &err), SM_ENOTFOUND);
	if (strstr(err.msg, file) == NULL)
		fail_msg("'%s' does not name '%s'", err.msg, file);
	done_run(&r, out);
	tu_rmtree(dir);
	free(dir);
}

/* A full disk (RLIMIT_FSIZE) at sizes from 1 KiB to past the whole file: rank 0's write fails
 * with the cause named and nothing left, or the run is whole; some limit falls
 * inside the rows, which are written K at a time (HDF5 writes the file's metadata at its close:
 * the rows come first). Each limit in a child (the limit is the process's). Child exit: 0 whole,
 * 1 failed in the rows, 2 failed after them, 3 wrong. */
static int full_disk_child(rlim_t bytes)
{
	struct rlimit rl = {bytes, bytes};
	sm_model_options mo;
	sm_pipeline_result r;
	sm_error err;
	char *out;
	int rc, ret;

	signal(SIGXFSZ, SIG_IGN);
	if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
		return 3;
	model(&mo, "float32", NULL);
	rc = run1(&mo, W.dir, NULL, 0, NULL, NULL, &out, &r, &err);
	if (rc == 0)
		ret = r.nhalos > 1 ? 0 : 3;
	else if (rc != SM_EIO || strstr(err.msg, "File too large") == NULL ||
		 strstr(err.msg, "profiles.hdf5") == NULL || tu_entries(out) != 0)
		ret = 3;
	else
		ret = strstr(err.msg, "cannot append halos 0 to ") != NULL ? 1 : 2;
	if (ret == 3)
		fprintf(stderr, "RLIMIT_FSIZE %llu: rc %d, '%s'\n", (unsigned long long)bytes, rc,
			err.msg);
	sm_pipeline_result_release(&r);
	tu_rmtree(out);
	free(out);
	return ret;
}

static void test_full_disk(void **state)
{
	int seen[4] = {0, 0, 0, 0};
	rlim_t kib;

	(void)state;
	for (kib = 1; kib <= 512; kib *= 2) {
		int st = 0;
		pid_t pid;

		fflush(NULL);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			_exit(full_disk_child(kib << 10));
		assert_int_equal(waitpid(pid, &st, 0), pid);
		if (!WIFEXITED(st) || WEXITSTATUS(st) > 2)
			fail_msg("RLIMIT_FSIZE %llu KiB: status %d", (unsigned long long)kib, st);
		seen[WEXITSTATUS(st)]++;
		printf("  RLIMIT_FSIZE %llu KiB: %s\n", (unsigned long long)kib,
		       WEXITSTATUS(st) == 0 ? "whole" : WEXITSTATUS(st) == 1 ? "failed in the rows"
						       : "failed after the rows");
	}
	assert_true(seen[0] > 0); /* whole with room */
	assert_true(seen[1] > 0); /* failed in the rows */
}

static void test_max_mem(void **state)
{
	sm_model_options mo;
	sm_pipeline_result r;
	sm_error err;
	char *out;

	(void)state;
	model(&mo, "float32", NULL);
	/* Enough for the halos and the index, not for the stream blocks. */
	assert_int_equal(run1(&mo, W.dir, NULL, 20 * W.g + 4 * W.n, NULL, NULL, &out, &r, &err),
			 SM_ELIMIT);
	assert_non_null(strstr(err.msg, "--max-mem"));
	assert_true(err.needed_bytes > 20 * W.g + 4 * W.n);
	assert_string_equal(r.stage, "stream_cells");
	done_run(&r, out);
}

static void cancel_in_stream(const sm_pipeline_progress *p, void *ctx)
{
	volatile sig_atomic_t *c = ctx;

	if (strcmp(p->stage, "stream_cells") == 0 && p->done > 0)
		*c = 2;
}

static void test_cancel(void **state)
{
	sm_model_options mo;
	sm_pipeline_result r;
	sm_prof_options popt;
	sm_prof *p = NULL;
	sm_error err;
	volatile sig_atomic_t flag = 0;
	char *out;

	(void)state;
	sm_prof_options_init(&popt);
	popt.timeline_hz = 0;
	assert_int_equal(sm_prof_create(&popt, &p, &err), 0);
	model(&mo, "float32", "10000");
	assert_int_equal(run1(&mo, W.dir, p, 0, &flag, cancel_in_stream, &out, &r, &err), SM_EINTR);
	assert_int_equal(err.signal, 2);
	assert_string_equal(r.stage, "stream_cells");
	assert_int_equal(sm_prof_live_requested(p), 0);
	sm_prof_free(p);
	done_run(&r, out);
}

static void test_injected_oom(void **state)
{
	static const char *const names[] = {"GroupPos", "halo_r200", "halo_grid_start",
					    "halo_grid_halos", "profile_sums", "InternalEnergy",
					    "temperature", "Coordinates", "io_buffer"};
	sm_model_options mo;
	size_t i;

	(void)state;
	model(&mo, "float32", NULL);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		sm_pipeline_result r;
		sm_prof_options popt;
		sm_prof *p = NULL;
		sm_error err;
		char *out;

		sm_prof_options_init(&popt);
		popt.timeline_hz = 0;
		assert_int_equal(sm_prof_create(&popt, &p, &err), 0);
		sm_prof_inject_failure(p, names[i], 1);
		assert_int_equal(run1(&mo, W.dir, p, 0, NULL, NULL, &out, &r, &err), SM_ENOMEM);
		assert_non_null(strstr(err.msg, names[i]));
		assert_int_equal(sm_prof_live_requested(p), 0);
		sm_prof_free(p);
		done_run(&r, out);
	}
}

static void test_bad_options(void **state)
{
	sm_model_options mo;
	sm_pipeline_result r;
	sm_pipeline_options o;
	sm_pipeline_comm c;
	sm_error err;
	char *out;

	(void)state;
	model(&mo, "float32", NULL);
	mo.ranks = 2;
	mo.mpi = 1;
	assert_int_equal(run1(&mo, W.dir, NULL, 0, NULL, NULL, &out, &r, &err), SM_EINVAL);
	assert_non_null(strstr(err.msg, "--ranks 2"));
	done_run(&r, out);

	model(&mo, "float32", NULL);
	mo.select = SM_SELECT_MASK;
	assert_int_equal(run1(&mo, W.dir, NULL, 0, NULL, NULL, &out, &r, &err), SM_EINVAL);
	assert_non_null(strstr(err.msg, "--select mask"));
	done_run(&r, out);

	model(&mo, "float32", NULL);
	mo.temperature = SM_TEMP_STREAMING;
	assert_int_equal(run1(&mo, W.dir, NULL, 0, NULL, NULL, &out, &r, &err), SM_EINVAL);
	assert_non_null(strstr(err.msg, "--temperature streaming"));
	done_run(&r, out);

	model(&mo, "float32", NULL);
	mo.stream_block = 0;
	assert_int_equal(run1(&mo, W.dir, NULL, 0, NULL, NULL, &out, &r, &err), SM_EINVAL);
	done_run(&r, out);

	model(&mo, "float32", NULL);
	assert_int_equal(run1(&mo, "/nonexistent/snap", NULL, 0, NULL, NULL, &out, &r, &err),
			 SM_ENOTFOUND);
	done_run(&r, out);

	/* The options are checked the same way by sm_model_options_check for the CLI. */
	model(&mo, "float32", NULL);
	mo.mpi = 1;
	mo.select = SM_SELECT_MASK;
	assert_int_equal(sm_model_options_check(&mo, &err), SM_EINVAL);

	/* An incomplete communicator. */
	model(&mo, "float32", NULL);
	memset(&c, 0, sizeof(c));
	c.size = 1;
	out = tu_tmpdir();
	options(&o, &mo, W.dir, out);
	assert_int_equal(sm_pipeline_run_distributed(&o, &c, NULL, &r, &err), SM_EINVAL);
	assert_non_null(strstr(err.msg, "communicator"));
	done_run(&r, out);
	options(&o, &mo, W.dir, NULL);
	assert_int_equal(sm_pipeline_run_distributed(&o, NULL, NULL, &r, &err), SM_EINVAL);
	sm_pipeline_result_release(&r);
}

/* ---- several ranks: forked processes and a shared-memory communicator ---------------------- */

#define FC_MAX 3
#define FC_SLOT (1u << 20)

struct fc_result {
	int rc, exited;
	sm_error err;
	char stage[64];
	char profiles[SM_PATH_MAX];
	uint64_t nhalos, sphere[64];
	uint64_t peak[4], live[4];
	int nstages;
};

struct fc_shared {
	pthread_barrier_t bar;
	int codes[FC_MAX];
	_Alignas(16) unsigned char data[FC_MAX][FC_SLOT];
	struct fc_result res[FC_MAX];
};

struct fc_ctx {
	struct fc_shared *S;
	int rank, size;
};

static void fc_wait(struct fc_ctx *c)
{
	pthread_barrier_wait(&c->S->bar);
}

#define FC_SUM(NAME, T)                                                                           \
	static int NAME(void *ctx, T *buf, size_t n)                                              \
	{                                                                                         \
		struct fc_ctx *c = ctx;                                                           \
		size_t per = FC_SLOT / sizeof(T), off, i;                                         \
		int q;                                                                            \
		for (off = 0; off < n; off += per) {                                              \
			size_t m = n - off < per ? n - off : per;                                 \
			memcpy(c->S->data[c->rank], buf + off, m * sizeof(T));                    \
			fc_wait(c);                                                               \
			if (c->rank == 0)                                                         \
				for (q = 1; q < c->size; q++)                                     \
					for (i = 0; i < m; i++)                                   \
						buf[off + i] +=                                   \
							((const T *)(void *)c->S->data[q])[i];    \
			fc_wait(c);                                                               \
		}                                                                                 \
		return 0;                                                                         \
	}

FC_SUM(fc_sum_i64, int64_t)
FC_SUM(fc_sum_f64, double)

static int fc_agree(void *ctx, int code, int *fail_rank, int *fail_code)
{
	struct fc_ctx *c = ctx;
	int q;

	c->S->codes[c->rank] = code;
	fc_wait(c);
	*fail_rank = -1;
	*fail_code = 0;
	for (q = 0; q < c->size; q++)
		if (c->S->codes[q] != 0) {
			*fail_rank = q;
			*fail_code = c->S->codes[q];
			break;
		}
	fc_wait(c);
	return 0;
}

static int fc_bcast(void *ctx, int root, void *buf, size_t len)
{
	struct fc_ctx *c = ctx;
	size_t off;

	for (off = 0; off < len; off += FC_SLOT) {
		size_t m = len - off < FC_SLOT ? len - off : FC_SLOT;

		if (c->rank == root)
			memcpy(c->S->data[0], (char *)buf + off, m);
		fc_wait(c);
		if (c->rank != root)
			memcpy((char *)buf + off, c->S->data[0], m);
		fc_wait(c);
	}
	return 0;
}

/* What one rank does differently in a multi-rank test. */
struct fc_plan {
	const char *base;
	sm_model_options mo;
	int max_mem_rank;         /* rank with a tight --max-mem, -1 none */
	int cancel_rank;          /* rank cancelled in stream_cells, -1 none */
	int oom_rank;             /* rank whose profile_sums allocation fails, -1 none */
};

/* A child's end: the exit system call itself, so that a sanitizer build does not run its leak
 * check over the parent's heap it inherited (the one-rank tests check leaks in the parent). */
static void fc_exit(int code)
{
	syscall(SYS_exit_group, code);
	_exit(code);
}

static void fc_child(struct fc_shared *S, int rank, int size, const struct fc_plan *pl,
		     const char *out)
{
	struct fc_ctx ctx = {S, rank, size};
	sm_pipeline_comm comm;
	sm_pipeline_options o;
	sm_pipeline_result r;
	sm_prof_options popt;
	sm_prof *p = NULL;
	struct fc_result *res = &S->res[rank];
	static volatile sig_atomic_t flag;
	size_t i, n;
	uint64_t h;

	alarm(60); /* a hang is a failure, not a stuck test */
	memset(&comm, 0, sizeof(comm));
	comm.rank = rank;
	comm.size = size;
	comm.ctx = &ctx;
	comm.sum_i64 = fc_sum_i64;
	comm.sum_f64 = fc_sum_f64;
	comm.agree = fc_agree;
	comm.bcast = fc_bcast;
	sm_prof_options_init(&popt);
	popt.timeline_hz = 0;
	if (sm_prof_create(&popt, &p, &res->err) != 0)
		fc_exit(3);
	if (pl->oom_rank == rank)
		sm_prof_inject_failure(p, "profile_sums", 1);
	options(&o, &pl->mo, pl->base, out);
	if (pl->max_mem_rank == rank)
		o.max_mem = 20 * W.g + 4 * W.n;
	if (pl->cancel_rank == rank) {
		o.cancel = &flag;
		o.progress = cancel_in_stream;
		o.progress_ctx = (void *)&flag;
	}
	res->rc = sm_pipeline_run_distributed(&o, &comm, p, &r, &res->err);
	snprintf(res->stage, sizeof(res->stage), "%s", r.stage);
	snprintf(res->profiles, sizeof(res->profiles), "%s", r.profiles_path);
	res->nhalos = r.nhalos;
	for (h = 0; h < r.nhalos && h < 64; h++)
		res->sphere[h] = r.halos[h].sphere_cells;
	n = sm_prof_stage_count(p);
	for (i = 0; i < n; i++) {
		sm_prof_stage_info st;

		if (sm_prof_stage_get(p, i, &st) != 0 || st.depth != 0 || res->nstages >= 4)
			continue;
		res->peak[res->nstages] = st.requested_peak;
		res->live[res->nstages] = st.requested_live_end;
		res->nstages++;
	}
	if (sm_prof_live_requested(p) != 0)
		res->rc = 1000;
	sm_pipeline_result_release(&r);
	sm_prof_free(p);
	res->exited = 1;
	fc_exit(0);
}

/* Runs `size` ranks as forked processes; S receives each rank's outcome. */
static struct fc_shared *fc_run(int size, const struct fc_plan *pl, const char *out)
{
	struct fc_shared *S = mmap(NULL, sizeof(*S), PROT_READ | PROT_WRITE,
				   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pthread_barrierattr_t ba;
	pid_t pid[FC_MAX];
	int q;

	assert_true(S != MAP_FAILED);
	memset(S->res, 0, sizeof(S->res));
	pthread_barrierattr_init(&ba);
	pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED);
	assert_int_equal(pthread_barrier_init(&S->bar, &ba, (unsigned)size), 0);
	pthread_barrierattr_destroy(&ba);
	fflush(NULL);
	for (q = 0; q < size; q++) {
		pid[q] = fork();
		assert_true(pid[q] >= 0);
		if (pid[q] == 0) {
			fc_child(S, q, size, pl, out);
			fc_exit(0);
		}
	}
	for (q = 0; q < size; q++) {
		int st = 0;

		assert_int_equal(waitpid(pid[q], &st, 0), pid[q]);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || !S->res[q].exited)
			fail_msg("rank %d of %d: %s %d", q, size,
				 WIFSIGNALED(st) ? "killed by signal" : "exit status",
				 WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	}
	pthread_barrier_destroy(&S->bar);
	return S;
}

static void fc_free(struct fc_shared *S)
{
	munmap(S, sizeof(*S));
}

static void ranks_vs_serial_at(const char *base, int64_t halos, int size, const char *pos,
			       const char *block)
{
	tu_profiles a, b;
	sm_pipeline_result ra;
	struct fc_plan pl;
	struct fc_shared *S;
	struct expect x;
	char *out = tu_tmpdir(), *pp;
	uint64_t h;
	int q, j;

	serial_profiles_at(base, halos, pos, &a, &ra);
	memset(&pl, 0, sizeof(pl));
	pl.base = base;
	model(&pl.mo, pos, block);
	pl.mo.halos = halos;
	pl.mo.mpi = 1;
	pl.mo.ranks = (uint32_t)size;
	pl.max_mem_rank = pl.cancel_rank = pl.oom_rank = -1;
	S = fc_run(size, &pl, out);
	expected(ra.nhalos, ra.halos, pl.mo.positions == SM_DTYPE_F32 ? 4 : 8, pl.mo.stream_block,
		 &x);
	for (q = 0; q < size; q++) {
		if (S->res[q].rc != 0)
			fail_msg("rank %d: %s", q, S->res[q].err.msg);
		assert_string_equal(S->res[q].stage, "");
		/* Every rank's arrays are the same, whatever its share. */
		assert_int_equal(S->res[q].nstages, 4);
		for (j = 0; j < 4; j++) {
			assert_int_equal(S->res[q].peak[j], x.peak[j]);
			assert_int_equal(S->res[q].live[j], x.live[j]);
		}
		assert_int_equal(S->res[q].profiles[0] != '\0', q == 0);
	}
	for (h = 0; h < ra.nhalos; h++)
		assert_int_equal(S->res[0].sphere[h], ra.halos[h].sphere_cells);
	pp = tu_path(out, "profiles.hdf5");
	assert_string_equal(S->res[0].profiles, pp);
	tu_profiles_read(pp, &b);
	assert_same_profiles(&a, &b);
	assert_int_equal(root_int_attr(pp, "ranks"), size);
	assert_int_equal(tu_entries(out), 1);
	free(pp);
	tu_profiles_free(&a);
	tu_profiles_free(&b);
	sm_pipeline_result_release(&ra);
	fc_free(S);
	tu_rmtree(out);
	free(out);
}

static void ranks_vs_serial(int size, const char *pos, const char *block)
{
	ranks_vs_serial_at(W.dir, -1, size, pos, block);
}

static void test_ranks_equal_serial(void **state)
{
	(void)state;
	ranks_vs_serial(2, "float32", NULL);
	ranks_vs_serial(3, "float32", "9999");
	ranks_vs_serial(3, "float64", NULL);
}

/* Every rank returns code with the same message, which contains `what` and names rank `bad`. */
static void expect_all(const struct fc_shared *S, int size, int code, int bad, const char *what,
		       const char *out)
{
	char prefix[64];
	int q;

	snprintf(prefix, sizeof(prefix), "rank %d of %d: ", bad, size);
	for (q = 0; q < size; q++) {
		if (S->res[q].rc != code)
			fail_msg("rank %d returned %d (%s), expected %d", q, S->res[q].rc,
				 S->res[q].err.msg, code);
		assert_int_equal(S->res[q].err.code, code);
		assert_string_equal(S->res[q].err.msg, S->res[0].err.msg);
		assert_int_equal(strncmp(S->res[q].err.msg, prefix, strlen(prefix)), 0);
		assert_non_null(strstr(S->res[q].err.msg, what));
		assert_string_equal(S->res[q].profiles, "");
	}
	assert_int_equal(tu_entries(out), 0);
}

static void test_ranks_fail_together(void **state)
{
	struct fc_plan pl;
	struct fc_shared *S;
	char file[4096], *dir, *out;
	int q;

	(void)state;
	memset(&pl, 0, sizeof(pl));
	model(&pl.mo, "float32", "5000");
	pl.mo.mpi = 1;
	pl.max_mem_rank = pl.cancel_rank = pl.oom_rank = -1;

	/* A bad chunk file that only rank 1 reads. */
	pl.mo.ranks = 2;
	dir = corrupt_chunk(chunk_of_rank(1, 2), "/PartType0/InternalEnergy", 9, 0, -1.0, file,
			    sizeof(file));
	pl.base = dir;
	out = tu_tmpdir();
	S = fc_run(2, &pl, out);
	expect_all(S, 2, SM_EFORMAT, 1, file, out);
	assert_non_null(strstr(S->res[0].err.msg, "InternalEnergy[9]"));
	assert_string_equal(S->res[1].stage, "stream_cells");
	fc_free(S);
	tu_rmtree(out);
	free(out);
	tu_rmtree(dir);
	free(dir);

	/* The same chunk bad for rank 2 of 3 and --max-mem too tight on rank 1: the lowest wins. */
	pl.mo.ranks = 3;
	dir = corrupt_chunk(chunk_of_rank(2, 3), "/PartType0/Coordinates", 2, 0, NAN, file,
			    sizeof(file));
	pl.base = dir;
	pl.max_mem_rank = 1;
	out = tu_tmpdir();
	S = fc_run(3, &pl, out);
	expect_all(S, 3, SM_ELIMIT, 1, "--max-mem", out);
	for (q = 0; q < 3; q++)
		assert_true(S->res[q].err.needed_bytes > 20 * W.g + 4 * W.n);
	fc_free(S);
	tu_rmtree(out);
	free(out);
	pl.max_mem_rank = -1;
	out = tu_tmpdir();
	S = fc_run(3, &pl, out);
	expect_all(S, 3, SM_EFORMAT, 2, "Coordinates[2]", out);
	assert_non_null(strstr(S->res[1].err.msg, file));
	fc_free(S);
	tu_rmtree(out);
	free(out);
	tu_rmtree(dir);
	free(dir);

	/* Cancelled on rank 2 while streaming; allocation failure on rank 1. */
	pl.base = W.dir;
	pl.cancel_rank = 2;
	out = tu_tmpdir();
	S = fc_run(3, &pl, out);
	expect_all(S, 3, SM_EINTR, 2, "signal 2", out);
	for (q = 0; q < 3; q++)
		assert_int_equal(S->res[q].err.signal, 2);
	fc_free(S);
	tu_rmtree(out);
	free(out);
	pl.cancel_rank = -1;
	pl.oom_rank = 1;
	out = tu_tmpdir();
	S = fc_run(3, &pl, out);
	expect_all(S, 3, SM_ENOMEM, 1, "profile_sums", out);
	fc_free(S);
	tu_rmtree(out);
	free(out);

	/* --ranks not the communicator's size: every rank refuses alike, no collective. */
	pl.oom_rank = -1;
	pl.mo.ranks = 2;
	out = tu_tmpdir();
	S = fc_run(3, &pl, out);
	for (q = 0; q < 3; q++) {
		assert_int_equal(S->res[q].rc, SM_EINVAL);
		assert_non_null(strstr(S->res[q].err.msg, "--ranks 2"));
	}
	assert_int_equal(tu_entries(out), 0);
	fc_free(S);
	tu_rmtree(out);
	free(out);
}

/* ---- load_halos: the catalogue chunk by chunk, the serial run's selection --------------------- */

/* A private copy of the mock. */
static char *copy_mock(void)
{
	char *dir = tu_tmpdir(), cmd[8192];

	snprintf(cmd, sizeof(cmd), "cp -r '%s'/. '%s'/", W.dir, dir);
	assert_int_equal(system(cmd), 0);
	return dir;
}

static void cat_path(const char *base, int chunk, char *buf, size_t len)
{
	snprintf(buf, len, "%s/groups_099/fof_subhalo_tab_099.%d.hdf5", base, chunk);
}

/* Overwrites element [row] (or [row, col]) of /Group/<field> in catalogue chunk `chunk`. */
static void set_group(const char *base, int chunk, const char *field, hsize_t row, hsize_t col,
		      float value)
{
	char path[4096], name[128];
	hid_t f, d, sp, ms;
	hsize_t start[2] = {row, col}, one[2] = {1, 1};

	cat_path(base, chunk, path, sizeof(path));
	snprintf(name, sizeof(name), "/Group/%s", field);
	f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
	assert_true(f >= 0);
	d = H5Dopen2(f, name, H5P_DEFAULT);
	assert_true(d >= 0);
	sp = H5Dget_space(d);
	ms = H5Screate_simple(1, one, NULL);
	assert_true(H5Sselect_hyperslab(sp, H5S_SELECT_SET, start, NULL, one, NULL) >= 0);
	assert_true(H5Dwrite(d, H5T_NATIVE_FLOAT, ms, sp, H5P_DEFAULT, &value) >= 0);
	H5Sclose(ms);
	H5Sclose(sp);
	H5Dclose(d);
	H5Fclose(f);
}

/* Overwrites the integer /Header attribute `name` of catalogue chunk `chunk`. */
static void set_cat_header(const char *base, int chunk, const char *name, int value)
{
	char path[4096];
	hid_t f, g, a;

	cat_path(base, chunk, path, sizeof(path));
	f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
	assert_true(f >= 0);
	g = H5Gopen2(f, "Header", H5P_DEFAULT);
	assert_true(g >= 0);
	a = H5Aopen(g, name, H5P_DEFAULT);
	assert_true(a >= 0);
	assert_true(H5Awrite(a, H5T_NATIVE_INT, &value) >= 0);
	H5Aclose(a);
	H5Gclose(g);
	H5Fclose(f);
}

/* Top-level stages' requested peak and live-after, in order. */
static size_t measured_stages(sm_prof *p, uint64_t peak[4], uint64_t live[4], char ids[4][32])
{
	size_t i, n = sm_prof_stage_count(p), j = 0;

	for (i = 0; i < n; i++) {
		sm_prof_stage_info st;

		assert_int_equal(sm_prof_stage_get(p, i, &st), 0);
		if (st.depth != 0 || j >= 4)
			continue;
		peak[j] = st.requested_peak;
		live[j] = st.requested_live_end;
		snprintf(ids[j], 32, "%s", st.id);
		j++;
	}
	return j;
}

/*
 * The serial run and the distributed run (one rank, profiled) of mo on base: the same return code;
 * on success the same halos in the same order (group, M200, R200, centre, sphere cells), the
 * distributed stages' requested bytes equal to docs/MPI.md (load_halos 20 Gc + 48 K, Gc from the
 * headers) and to the estimator's; on failure the same message. Returns the code; msg (may be
 * NULL) receives the message.
 */
static int same_as_serial(const char *base, const sm_model_options *mo_in, char *msg, size_t len)
{
	sm_model_options ms = *mo_in, md = *mo_in;
	sm_pipeline_options o;
	sm_pipeline_result rs, rd;
	sm_prof_options popt;
	sm_prof *p = NULL;
	sm_error es, ed;
	char *outs = tu_tmpdir(), *outd = tu_tmpdir(), ids[4][32];
	uint64_t peak[4], live[4], gc = 0, h;
	int rcs, rcd, i;

	ms.mpi = 0;
	ms.ranks = 1;
	md.mpi = 1;
	md.ranks = 1;
	sm_error_clear(&es);
	sm_error_clear(&ed);
	options(&o, &ms, base, outs);
	rcs = sm_pipeline_run(&o, NULL, &rs, &es);
	sm_prof_options_init(&popt);
	popt.timeline_hz = 0;
	assert_int_equal(sm_prof_create(&popt, &p, &ed), 0);
	options(&o, &md, base, outd);
	rcd = sm_pipeline_run_distributed(&o, NULL, p, &rd, &ed);
	if (rcs != rcd)
		fail_msg("serial %d (%s), distributed %d (%s)", rcs, es.msg, rcd, ed.msg);
	if (msg != NULL)
		snprintf(msg, len, "%s", ed.msg);
	if (rcs != 0) {
		assert_string_equal(ed.msg, es.msg);
		assert_string_equal(rd.stage, rs.stage);
		assert_int_equal(tu_entries(outd), 0);
		assert_int_equal(sm_prof_live_requested(p), 0);
		goto out;
	}
	assert_int_equal(rd.nhalos, rs.nhalos);
	assert_int_equal(rd.empty, rs.empty);
	for (h = 0; h < rs.nhalos; h++) {
		const sm_pipeline_halo *a = &rs.halos[h], *b = &rd.halos[h];

		if (a->group_index != b->group_index)
			fail_msg("halo %llu: serial group %lld, distributed group %lld",
				 (unsigned long long)h, (long long)a->group_index,
				 (long long)b->group_index);
		assert_memory_equal(&a->m200_msun, &b->m200_msun, sizeof(double));
		assert_memory_equal(&a->r200, &b->r200, sizeof(double));
		assert_memory_equal(a->center, b->center, sizeof(a->center));
		assert_int_equal(a->sphere_cells, b->sphere_cells);
	}
	/* load_halos holds one catalogue chunk's columns: 20 Gc + 48 K, Gc from the headers */
	for (i = 0; i < MAXCAT; i++) {
		int64_t ng = cat_chunk_groups(base, i);

		if (ng < 0)
			break;
		gc = (uint64_t)ng > gc ? (uint64_t)ng : gc;
	}
	assert_int_equal(measured_stages(p, peak, live, ids), 4);
	assert_string_equal(ids[0], "load_halos");
	assert_int_equal(peak[0], 20 * gc + 48 * rd.nhalos);
	assert_int_equal(live[0], 48 * rd.nhalos);
	/* and the estimator says so, stage by stage */
	{
		sm_est_input in;
		sm_estimate e;
		sm_error err;
		size_t si;

		assert_int_equal(sm_est_input_from_base(&in, base, 99, &md, &err), 0);
		assert_int_equal(in.nhalos, rd.nhalos);
		assert_int_equal(in.groups_chunk_max, gc);
		for (h = 0; h < in.nhalos; h++)
			assert_int_equal(in.halos[h].group_index, rd.halos[h].group_index);
		assert_int_equal(sm_estimate_compute(&in, &md, &e, &err), 0);
		assert_int_equal(e.nstages, 4);
		for (si = 0; si < 4; si++) {
			assert_string_equal(e.stages[si].id, ids[si]);
			if (e.stages[si].peak != peak[si] || e.stages[si].live_after != live[si])
				fail_msg("stage %s: estimated peak %llu live %llu, measured %llu "
					 "live %llu", ids[si], (unsigned long long)e.stages[si].peak,
					 (unsigned long long)e.stages[si].live_after,
					 (unsigned long long)peak[si], (unsigned long long)live[si]);
		}
		sm_estimate_release(&e);
		sm_est_input_release(&in);
	}
	assert_int_equal(sm_prof_live_requested(p), 0);
out:
	sm_prof_free(p);
	sm_pipeline_result_release(&rs);
	sm_pipeline_result_release(&rd);
	tu_rmtree(outs);
	tu_rmtree(outd);
	free(outs);
	free(outd);
	return rcd;
}

/* The mock's catalogue with ties across chunks and NaN masses (1e10 Msun/h; the mock's own are
 * below 67,740, 1e15 Msun): groups 2 (chunk 0), 9 (chunk 3) and 11 (chunk 4) at 200,000, groups
 * 5 (chunk 2) and 12 (chunk 4) at 100,000, groups 7 (chunk 2) and 13 (chunk 4) NaN. */
static char *tied_mock(void)
{
	char *dir = copy_mock();

	assert_int_equal(W.cat_n[0], 4);
	assert_int_equal(W.cat_n[2], 4);
	assert_int_equal(W.cat_n[3], 3);
	assert_int_equal(W.cat_n[4], 3);
	set_group(dir, 0, "Group_M_Crit200", 2, 0, 200000);
	set_group(dir, 3, "Group_M_Crit200", 1, 0, 200000);
	set_group(dir, 4, "Group_M_Crit200", 0, 0, 200000);
	set_group(dir, 2, "Group_M_Crit200", 1, 0, 100000);
	set_group(dir, 4, "Group_M_Crit200", 1, 0, 100000);
	set_group(dir, 2, "Group_M_Crit200", 3, 0, NAN);
	set_group(dir, 4, "Group_M_Crit200", 2, 0, NAN);
	return dir;
}

static void test_selection_equals_serial(void **state)
{
	static const int64_t ns[] = {0, 1, 2, 3, 4, 5, 9, 12, 13, 14, 40};
	sm_model_options mo;
	char *dir = tied_mock();
	double tie = (double)100000.0f * 1e10 / W.h;
	size_t i;

	(void)state;
	/* --halos N: the N first of 2, 9, 11, 5, 12, ..., 7, 13 (NaN last, by group) */
	for (i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		model(&mo, "float32", "30000");
		mo.halos = ns[i];
		assert_int_equal(same_as_serial(dir, &mo, NULL, 0), 0);
	}
	{
		sm_pipeline_options o;
		sm_pipeline_result r;
		sm_error err;
		char *out = tu_tmpdir();
		static const int64_t want[5] = {2, 9, 11, 5, 12};

		model(&mo, "float64", NULL);
		mo.halos = 14;
		mo.mpi = 1;
		options(&o, &mo, dir, out);
		if (sm_pipeline_run_distributed(&o, NULL, NULL, &r, &err) != 0)
			fail_msg("%s", err.msg);
		assert_int_equal(r.nhalos, 14);
		for (i = 0; i < 5; i++)
			assert_int_equal(r.halos[i].group_index, want[i]);
		assert_int_equal(r.halos[12].group_index, 7);
		assert_int_equal(r.halos[13].group_index, 13);
		assert_true(isnan(r.halos[13].m200_msun));
		sm_pipeline_result_release(&r);
		tu_rmtree(out);
		free(out);
	}
	/* --mass-min: strictly above (the tie at 100,000 falls out exactly at its mass), NaN never */
	model(&mo, "float32", NULL);
	assert_int_equal(same_as_serial(dir, &mo, NULL, 0), 0);
	mo.mass_min = tie;
	assert_int_equal(same_as_serial(dir, &mo, NULL, 0), 0);
	mo.mass_min = nextafter(tie, 0);
	assert_int_equal(same_as_serial(dir, &mo, NULL, 0), 0);
	mo.mass_min = 0;
	assert_int_equal(same_as_serial(dir, &mo, NULL, 0), 0);
	mo.mass_min = 1e20;   /* empty */
	assert_int_equal(same_as_serial(dir, &mo, NULL, 0), 0);
	/* several ranks: every rank selects alike (the profiles are rank 0's, the bytes every rank's) */
	ranks_vs_serial_at(dir, 9, 3, "float32", "20000");
	ranks_vs_serial_at(dir, -1, 2, "float64", NULL);
	/* the unmodified mock, both selections */
	model(&mo, "float64", "777");
	assert_int_equal(same_as_serial(W.dir, &mo, NULL, 0), 0);
	mo.halos = 5;
	assert_int_equal(same_as_serial(W.dir, &mo, NULL, 0), 0);
	tu_rmtree(dir);
	free(dir);
}

/* A selected group with a bad R200 or centre in the last chunk: the serial run's error, naming
 * that chunk file, on every rank. */
static void test_bad_group_later_chunk(void **state)
{
	static const struct {
		const char *field;
		int col;
		float value;
		const char *what;
	} bad[] = {
		{"Group_R_Crit200", 0, -1.0f, "has Group_R_Crit200 <= 0 or NaN"},
		{"Group_R_Crit200", 0, 0.0f, "has Group_R_Crit200 <= 0 or NaN"},
		{"Group_R_Crit200", 0, NAN, "has Group_R_Crit200 <= 0 or NaN"},
		{"GroupPos", 1, INFINITY, "has a non-finite GroupPos"},
		{"GroupPos", 2, 1e9f, "more than half a box"},
	};
	sm_model_options mo;
	char msg[SM_ERROR_MSG_MAX], file[4096], want[4200];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *dir = copy_mock();

		/* group 11, the first of chunk 4, made the most massive: selected halo 0 */
		set_group(dir, 4, "Group_M_Crit200", 0, 0, 200000);
		set_group(dir, 4, bad[i].field, 0, (hsize_t)bad[i].col, bad[i].value);
		cat_path(dir, 4, file, sizeof(file));
		model(&mo, "float32", NULL);
		assert_int_equal(same_as_serial(dir, &mo, msg, sizeof(msg)), SM_EFORMAT);
		snprintf(want, sizeof(want), "'%s': group 11 (selected halo 0) ", file);
		assert_int_equal(strncmp(msg, want, strlen(want)), 0);
		assert_non_null(strstr(msg, bad[i].what));
		if (i == 0) {
			struct fc_plan pl;
			struct fc_shared *S;
			char *out = tu_tmpdir();
			int q;

			memset(&pl, 0, sizeof(pl));
			pl.base = dir;
			model(&pl.mo, "float32", NULL);
			pl.mo.mpi = 1;
			pl.mo.ranks = 2;
			pl.max_mem_rank = pl.cancel_rank = pl.oom_rank = -1;
			S = fc_run(2, &pl, out);
			expect_all(S, 2, SM_EFORMAT, 0, msg, out);
			for (q = 0; q < 2; q++)
				assert_string_equal(S->res[q].stage, "load_halos");
			fc_free(S);
			tu_rmtree(out);
			free(out);
		}
		/* the same group not selected: no error, in either run */
		if (i == 0) {
			set_group(dir, 4, "Group_M_Crit200", 0, 0, 1.0f);
			assert_int_equal(same_as_serial(dir, &mo, NULL, 0), 0);
		}
		tu_rmtree(dir);
		free(dir);
	}
}

/* A broken catalogue: the same error as the serial run's, whichever chunk breaks it. */
static void test_bad_catalog_equals_serial(void **state)
{
	sm_model_options mo;
	char msg[SM_ERROR_MSG_MAX], file[4096], *dir;
	hid_t f;

	(void)state;
	model(&mo, "float32", NULL);

	/* chunk 3 says one group more than it holds: its columns have 3 rows, not 4 */
	dir = copy_mock();
	set_cat_header(dir, 3, "Ngroups_ThisFile", 4);
	assert_int_equal(same_as_serial(dir, &mo, msg, sizeof(msg)), SM_EFORMAT);
	cat_path(dir, 3, file, sizeof(file));
	assert_non_null(strstr(msg, file));
	assert_non_null(strstr(msg, "has 3 rows but Ngroups_ThisFile is 4"));
	tu_rmtree(dir);
	free(dir);

	/* chunk 4 claims far more groups than Ngroups_Total: never sized by it */
	dir = copy_mock();
	set_cat_header(dir, 4, "Ngroups_ThisFile", 1000000000);
	assert_int_equal(same_as_serial(dir, &mo, msg, sizeof(msg)), SM_EFORMAT);
	assert_non_null(strstr(msg, "add up to more than the 14 groups of Ngroups_Total"));
	tu_rmtree(dir);
	free(dir);

	/* chunk 0 says one group more in Ngroups_Total than the other chunks: they disagree */
	dir = copy_mock();
	set_cat_header(dir, 0, "Ngroups_Total", 15);
	assert_int_equal(same_as_serial(dir, &mo, msg, sizeof(msg)), SM_EFORMAT);
	assert_non_null(strstr(msg, "'Ngroups_Total' is 14, but 15 in"));
	assert_non_null(strstr(msg, "the chunk files disagree"));
	tu_rmtree(dir);
	free(dir);

	/* every chunk says 15: the chunks add up to less than Ngroups_Total */
	dir = copy_mock();
	{
		int q;

		for (q = 0; q < 5; q++)
			set_cat_header(dir, q, "Ngroups_Total", 15);
	}
	assert_int_equal(same_as_serial(dir, &mo, msg, sizeof(msg)), SM_EFORMAT);
	assert_non_null(strstr(msg, "add up to 14, but Ngroups_Total is 15"));
	tu_rmtree(dir);
	free(dir);

	/* chunk 4 has no GroupPos (read last: after all masses and radii) */
	dir = copy_mock();
	cat_path(dir, 4, file, sizeof(file));
	f = H5Fopen(file, H5F_ACC_RDWR, H5P_DEFAULT);
	assert_true(f >= 0);
	assert_true(H5Ldelete(f, "/Group/GroupPos", H5P_DEFAULT) >= 0);
	H5Fclose(f);
	assert_int_equal(same_as_serial(dir, &mo, msg, sizeof(msg)), SM_ENOTFOUND);
	assert_non_null(strstr(msg, file));
	assert_non_null(strstr(msg, "GroupPos"));
	tu_rmtree(dir);
	free(dir);

	/* a missing chunk file */
	dir = copy_mock();
	cat_path(dir, 3, file, sizeof(file));
	assert_int_equal(unlink(file), 0);
	assert_int_equal(same_as_serial(dir, &mo, msg, sizeof(msg)), SM_ENOTFOUND);
	assert_non_null(strstr(msg, file));
	tu_rmtree(dir);
	free(dir);
}

/* --max-mem at load_halos' exact peak passes it; a byte less stops the run there. */
static void test_load_halos_max_mem(void **state)
{
	sm_model_options mo;
	sm_pipeline_result r;
	sm_error err;
	char *out;

	(void)state;
	model(&mo, "float32", NULL);
	mo.halos = 3;
	assert_int_equal(run1(&mo, W.dir, NULL, 20 * W.gc + 48 * 3, NULL, NULL, &out, &r, &err),
			 SM_ELIMIT);
	assert_string_equal(r.stage, "build_index");   /* load_halos fitted */
	done_run(&r, out);
	assert_int_equal(run1(&mo, W.dir, NULL, 20 * W.gc - 1, NULL, NULL, &out, &r, &err),
			 SM_ELIMIT);
	assert_string_equal(r.stage, "load_halos");
	assert_non_null(strstr(err.msg, "'GroupPos'"));
	assert_int_equal(err.needed_bytes, 20 * W.gc);
	done_run(&r, out);
}

/* The halo-grid cells four at a time (AVX2, where the CPU has it) equal the one-at-a-time loop's
 * for float32 and float64 positions: random ones within half a box of the box (the read's check),
 * and the edges: 0, -0, the box and the floats and doubles next to it, cell boundaries, the
 * limits of the check, NaN. */
static void test_grid_cells_avx2(void **state)
{
	enum { N = 4099 };
	const double box = 75.0, inv_w = 17.0 / 75.0;
	const uint32_t hg = 17;
	const double edge[] = {0.0, -0.0, box, nextafter(box, 0), nextafter(box, 2 * box), -box / 2,
			       1.5 * box, nextafter(1.5 * box, 0), 75.0 / 17.0, 2 * 75.0 / 17.0,
			       nextafter(75.0 / 17.0, 0), -75.0 / 17.0, NAN, 1e-300, -1e-300};
	double *xd = malloc(3 * N * sizeof(double));
	float *xf = malloc(3 * N * sizeof(float));
	uint32_t *a = malloc(N * sizeof(uint32_t)), *b = malloc(N * sizeof(uint32_t));
	unsigned seed = 12345u;
	size_t i;
	int f64;

	(void)state;
	assert_non_null(xd);
	assert_non_null(xf);
	assert_non_null(a);
	assert_non_null(b);
	for (i = 0; i < 3 * N; i++) {
		seed = seed * 1103515245u + 12345u;
		xd[i] = i < 3 * 300 ? edge[(i / 3 + i % 3 * 5) % (sizeof(edge) / sizeof(edge[0]))]
				    : -box / 2 + 2 * box * (double)(seed >> 8) / 16777216.0;
		xf[i] = (float)xd[i];
	}
	for (f64 = 0; f64 <= 1; f64++) {
		const void *x = f64 ? (const void *)xd : (const void *)xf;

		sm__pl_grid_avx2 = 1;
		sm__pl_grid_cells(x, f64, a, N, box, inv_w, hg);
		sm__pl_grid_avx2 = 0;
		sm__pl_grid_cells(x, f64, b, N, box, inv_w, hg);
		sm__pl_grid_avx2 = 1;
		for (i = 0; i < N; i++) {
			if (a[i] != b[i])
				fail_msg("%s cell %zu (%a %a %a): %u against %u", f64 ? "float64" : "float32",
					 i, xd[3 * i], xd[3 * i + 1], xd[3 * i + 2], a[i], b[i]);
			assert_true(a[i] < hg * hg * hg);
		}
	}
	free(xd);
	free(xf);
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_halo_grid_side),
		cmocka_unit_test(test_grid_cells_avx2),
		cmocka_unit_test(test_assign_chunks),
		cmocka_unit_test(test_rank_files),
		cmocka_unit_test(test_one_rank_equals_serial),
		cmocka_unit_test(test_requested_bytes),
		cmocka_unit_test(test_empty_selection),
		cmocka_unit_test(test_bad_chunk),
		cmocka_unit_test(test_block_parts),
		cmocka_unit_test(test_read_fails_after_adds),
		cmocka_unit_test(test_full_disk),
		cmocka_unit_test(test_max_mem),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_injected_oom),
		cmocka_unit_test(test_bad_options),
		cmocka_unit_test(test_ranks_equal_serial),
		cmocka_unit_test(test_ranks_fail_together),
		cmocka_unit_test(test_selection_equals_serial),
		cmocka_unit_test(test_bad_group_later_chunk),
		cmocka_unit_test(test_bad_catalog_equals_serial),
		cmocka_unit_test(test_load_halos_max_mem),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
