/*
 * The pipeline against a brute-force computation written here: a mock snapshot (200k cells, 6 halos
 * above the cut, 4 chunk files) read with the snapshot API, every cell tested against every
 * selected halo with a periodic distance in double, temperatures from DESIGN.md's formula. Checks
 * the science (counts once per halo, periodic boundary, star-forming cells, hist2d rows, the mean
 * temperature), the agreement of the strategies (float32/float64, mask/index, streaming/in-memory),
 * that every stage's measured requested bytes equal the estimator's exactly, and the failure paths
 * (allocation failure, --max-mem, cancellation, bad halos and bad cells, an empty cut).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <hdf5.h>

#include "snapmem/estimator.h"
#include "snapmem/mock.h"
#include "snapmem/pipeline.h"
#include "snapmem/profiler.h"
#include "snapmem/snapshot.h"

#include "util.h"

#define NGAS 200000u
#define NHALOS 6u
#define RB SM_MODEL_RBINS
#define TB SM_MODEL_TBINS

/* The brute-force truth for one halo. */
struct halo_truth {
	int64_t group;
	double c[3], r200, m200;
	int64_t counts[RB], sf[RB], h2[RB * TB];
	double mean[RB];
	uint64_t inside;
	uint64_t edge32;     /* cells within float32 rounding of a radial bin edge or 2 R200 */
};

static struct {
	char *dir;
	uint64_t n;
	double box, h;
	double *x;           /* [n,3] float64 positions */
	float *t;            /* temperature, -T when star-forming */
	uint64_t k;
	struct halo_truth *halos;
} W;

/* ---- the brute force ------------------------------------------------------------------------- */

static double pdist(const double *x, const double *c, double box)
{
	double s = 0;
	int d;

	for (d = 0; d < 3; d++) {
		double dx = x[d] - c[d];

		dx -= box * nearbyint(dx / box);
		s += dx * dx;
	}
	return sqrt(s);
}

static int cmp_mass(const void *a, const void *b)
{
	const struct halo_truth *x = a, *y = b;

	if (x->m200 != y->m200)
		return x->m200 > y->m200 ? -1 : 1;
	return x->group < y->group ? -1 : 1;
}

static int setup(void **state)
{
	sm_mock_options mo;
	sm_error err;
	sm_snapshot s;
	sm_catalog c;
	float *u, *xe, *sfr, *gm, *gr, *gp;
	uint64_t i, g, k = 0, h;
	double uv2;

	(void)state;
	sm_error_clear(&err);
	memset(&W, 0, sizeof(W));
	W.dir = tu_tmpdir();
	sm_mock_options_init(&mo);
	mo.gas = NGAS;
	mo.halos = NHALOS;
	mo.files = 4;
	mo.seed = 7;
	if (sm_mock_write(W.dir, &mo, &err) != 0)
		fail_msg("mock: %s", err.msg);
	memset(&s, 0, sizeof(s));
	memset(&c, 0, sizeof(c));
	if (sm_snapshot_open_base(&s, W.dir, 99, &err) != 0 || sm_snapshot_scan(&s, &err) != 0)
		fail_msg("open: %s", err.msg);
	W.n = s.header.npart_total[0];
	W.box = s.header.box_size;
	W.h = s.header.hubble_param;
	uv2 = s.header.unit_velocity_cm_s * s.header.unit_velocity_cm_s;
	W.x = malloc(W.n * 24);
	W.t = malloc(W.n * 4);
	u = malloc(W.n * 4);
	xe = malloc(W.n * 4);
	sfr = malloc(W.n * 4);
	assert_true(W.x && W.t && u && xe && sfr);
	assert_int_equal(sm_snapshot_read_field(&s, 0, "Coordinates", SM_DTYPE_F64, 3, W.x, NULL,
						&err), 0);
	assert_int_equal(sm_snapshot_read_field(&s, 0, "InternalEnergy", SM_DTYPE_F32, 1, u, NULL,
						&err), 0);
	assert_int_equal(sm_snapshot_read_field(&s, 0, "ElectronAbundance", SM_DTYPE_F32, 1, xe,
						NULL, &err), 0);
	assert_int_equal(sm_snapshot_read_field(&s, 0, "StarFormationRate", SM_DTYPE_F32, 1, sfr,
						NULL, &err), 0);
	for (i = 0; i < W.n; i++) {
		double mu = 4.0 * SM_PIPELINE_MP / (1.0 + 3.0 * 0.76 + 4.0 * 0.76 * (double)xe[i]);
		double T = (5.0 / 3.0 - 1.0) * (double)u[i] / 1.380649e-16 * uv2 * mu;

		W.t[i] = sfr[i] > 0 ? -(float)T : (float)T;
	}
	free(u);
	free(xe);
	free(sfr);
	sm_snapshot_release(&s);

	if (sm_catalog_open_base(&c, W.dir, 99, &err) != 0)
		fail_msg("catalog: %s", err.msg);
	g = c.ngroups_total;
	gm = malloc(g * 4);
	gr = malloc(g * 4);
	gp = malloc(g * 12);
	assert_int_equal(sm_catalog_read_group_field(&c, "Group_M_Crit200", SM_DTYPE_F32, 1, gm,
						     &err), 0);
	assert_int_equal(sm_catalog_read_group_field(&c, "Group_R_Crit200", SM_DTYPE_F32, 1, gr,
						     &err), 0);
	assert_int_equal(sm_catalog_read_group_field(&c, "GroupPos", SM_DTYPE_F32, 3, gp, &err), 0);
	sm_catalog_release(&c);
	W.halos = calloc(g, sizeof(*W.halos));
	for (i = 0; i < g; i++) {
		double m = (double)gm[i] * 1e10 / W.h;

		if (!(m > 1e14))
			continue;
		W.halos[k].group = (int64_t)i;
		W.halos[k].m200 = m;
		W.halos[k].r200 = gr[i];
		W.halos[k].c[0] = gp[3 * i];
		W.halos[k].c[1] = gp[3 * i + 1];
		W.halos[k].c[2] = gp[3 * i + 2];
		k++;
	}
	W.k = k;
	assert_int_equal(k, NHALOS);
	qsort(W.halos, k, sizeof(*W.halos), cmp_mass);
	free(gm);
	free(gr);
	free(gp);

	for (h = 0; h < k; h++) {
		struct halo_truth *H = &W.halos[h];
		double sum[RB] = {0}, eps = 8.0 * W.box * ldexp(1.0, -24);
		int b;

		for (i = 0; i < W.n; i++) {
			double r = pdist(&W.x[3 * i], H->c, W.box), x, lt;
			int rb, tb;

			/* float32 positions hold the box to 2^-24 relative: a few of those ulps,
			 * in bins of r/R200 or at 2 R200, decide whether float32 may differ. */
			x = r / H->r200 * 25.0;
			if (fabs(r - 2 * H->r200) < eps ||
			    (r < 2 * H->r200 && fabs(x - nearbyint(x)) < eps / H->r200 * 25.0))
				H->edge32++;
			if (!(r < 2 * H->r200))
				continue;
			H->inside++;
			rb = (int)x;
			if (rb > RB - 1)
				rb = RB - 1;
			if (signbit(W.t[i])) {
				H->sf[rb]++;
				continue;
			}
			H->counts[rb]++;
			sum[rb] += (double)W.t[i];
			lt = (log10((double)W.t[i]) - 3.0) * 10.0;
			tb = lt > 0 ? (lt < TB ? (int)lt : TB - 1) : 0;
			H->h2[rb * TB + tb]++;
		}
		for (b = 0; b < RB; b++)
			H->mean[b] = H->counts[b] ? sum[b] / (double)H->counts[b] : NAN;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(W.x);
	free(W.t);
	free(W.halos);
	tu_rmtree(W.dir);
	free(W.dir);
	return 0;
}

/* ---- running the pipeline and reading its result -------------------------------------------- */

struct run {
	char *out;
	sm_pipeline_result r;
	tu_profiles po;
	sm_prof *p;
	sm_model_options mo;
};

static void model(sm_model_options *mo, const char *pos, const char *sel, const char *temp,
		  const char *block)
{
	sm_error err;

	sm_model_options_init(mo);
	assert_int_equal(sm_model_option_apply(mo, "--positions", pos, &err), 1);
	assert_int_equal(sm_model_option_apply(mo, "--select", sel, &err), 1);
	assert_int_equal(sm_model_option_apply(mo, "--temperature", temp, &err), 1);
	if (block != NULL)
		assert_int_equal(sm_model_option_apply(mo, "--stream-block", block, &err), 1);
}

static void run_pipeline(struct run *R, const sm_model_options *mo, int profile)
{
	sm_pipeline_options o;
	sm_prof_options popt;
	sm_error err;
	char *pp;

	memset(R, 0, sizeof(*R));
	sm_error_clear(&err);
	R->mo = *mo;
	R->out = tu_tmpdir();
	if (profile) {
		sm_prof_options_init(&popt);
		popt.timeline_hz = 0;
		assert_int_equal(sm_prof_create(&popt, &R->p, &err), 0);
	}
	sm_pipeline_options_init(&o);
	o.base_path = W.dir;
	o.snap = 99;
	o.model = *mo;
	o.out_dir = R->out;
	if (sm_pipeline_run(&o, R->p, &R->r, &err) != 0)
		fail_msg("pipeline: %s", err.msg);
	pp = tu_path(R->out, "profiles.hdf5");
	assert_string_equal(R->r.profiles_path, pp);
	tu_profiles_read(pp, &R->po);
	free(pp);
}

static void free_run(struct run *R)
{
	tu_profiles_free(&R->po);
	sm_pipeline_result_release(&R->r);
	sm_prof_free(R->p);
	tu_rmtree(R->out);
	free(R->out);
}

static int rel_close(double a, double b, double tol)
{
	if (isnan(a) || isnan(b))
		return isnan(a) && isnan(b);
	return fabs(a - b) <= tol * fabs(b);
}

/* ---- science --------------------------------------------------------------------------------- */

static void test_float64_matches_brute_force(void **state)
{
	struct run R;
	sm_model_options mo;
	uint64_t h, periodic = 0, sf_total = 0;
	int b, t;

	(void)state;
	model(&mo, "float64", "index", "in-memory", NULL);
	run_pipeline(&R, &mo, 0);
	assert_int_equal(R.po.k, W.k);
	assert_int_equal(R.r.nhalos, W.k);
	assert_false(R.r.empty);
	for (h = 0; h < W.k; h++) {
		const struct halo_truth *H = &W.halos[h];
		uint64_t inside = 0;
		int d;

		assert_int_equal(R.po.group[h], H->group);
		assert_true(R.po.r200[h] == H->r200);
		assert_true(R.po.m200[h] == H->m200);
		for (d = 0; d < 3; d++) {
			assert_true(R.po.center[3 * h + d] == H->c[d]);
			if (H->c[d] < 2 * H->r200 || H->c[d] > W.box - 2 * H->r200)
				periodic++;
		}
		for (b = 0; b < RB; b++) {
			int64_t row = 0;

			assert_int_equal(R.po.counts[h * RB + b], H->counts[b]);
			assert_int_equal(R.po.sf[h * RB + b], H->sf[b]);
			for (t = 0; t < TB; t++) {
				assert_int_equal(R.po.h2[(h * RB + b) * TB + t], H->h2[b * TB + t]);
				row += R.po.h2[(h * RB + b) * TB + t];
			}
			assert_int_equal(row, R.po.counts[h * RB + b]);
			/* Summation order differs (the index permutes the cells): not bit-equal. */
			assert_true(rel_close(R.po.mean[h * RB + b], H->mean[b], 1e-12));
			inside += (uint64_t)(R.po.counts[h * RB + b] + R.po.sf[h * RB + b]);
			sf_total += (uint64_t)R.po.sf[h * RB + b];
		}
		assert_int_equal(inside, H->inside);
		assert_int_equal(R.r.halos[h].sphere_cells, H->inside);
		assert_true(H->inside > 0);
	}
	/* The test means something only if some halo straddles the box and some cells form stars. */
	assert_true(periodic > 0);
	assert_true(sf_total > 0);
	free_run(&R);
}

static void test_float32_close_to_float64(void **state)
{
	struct run a, b;
	sm_model_options mo;
	uint64_t h, edges = 0, diff = 0, total = 0;
	int i;

	(void)state;
	model(&mo, "float32", "index", "in-memory", NULL);
	run_pipeline(&a, &mo, 0);
	model(&mo, "float64", "index", "in-memory", NULL);
	run_pipeline(&b, &mo, 0);
	assert_int_equal(a.po.k, b.po.k);
	for (h = 0; h < W.k; h++) {
		edges += W.halos[h].edge32;
		total += W.halos[h].inside;
	}
	for (i = 0; i < (int)(W.k * RB); i++) {
		diff += (uint64_t)llabs(a.po.counts[i] - b.po.counts[i]);
		diff += (uint64_t)llabs(a.po.sf[i] - b.po.sf[i]);
	}
	/* A cell can change bins only when it lies within float32 rounding of an edge; each such
	 * cell moves one count out of a bin and into another. */
	print_message("float32 vs float64: %llu bin moves, %llu cells near an edge of %llu inside\n",
		      (unsigned long long)diff, (unsigned long long)edges,
		      (unsigned long long)total);
	assert_true(diff <= 2 * edges);
	assert_true(edges * 100 < total);
	free_run(&a);
	free_run(&b);
}

static void assert_same_profiles(const tu_profiles *a, const tu_profiles *b, double tol)
{
	uint64_t i;

	assert_int_equal(a->k, b->k);
	for (i = 0; i < a->k; i++)
		assert_int_equal(a->group[i], b->group[i]);
	for (i = 0; i < a->k * RB; i++) {
		assert_int_equal(a->counts[i], b->counts[i]);
		assert_int_equal(a->sf[i], b->sf[i]);
		if (tol == 0)
			assert_memory_equal(&a->mean[i], &b->mean[i], sizeof(double));
		else
			assert_true(rel_close(a->mean[i], b->mean[i], tol));
	}
	assert_memory_equal(a->h2, b->h2, a->k * RB * TB * 8);
}

static void test_mask_equals_index(void **state)
{
	struct run a, b;
	sm_model_options mo;

	(void)state;
	model(&mo, "float32", "index", "in-memory", NULL);
	run_pipeline(&a, &mo, 0);
	model(&mo, "float32", "mask", "in-memory", NULL);
	run_pipeline(&b, &mo, 0);
	/* Same cells, same distances (one function); the means differ only in summation order. */
	assert_same_profiles(&a.po, &b.po, 1e-12);
	free_run(&a);
	free_run(&b);
}

static void test_streaming_equals_in_memory(void **state)
{
	struct run a, b;
	sm_model_options mo;

	(void)state;
	model(&mo, "float32", "index", "in-memory", NULL);
	run_pipeline(&a, &mo, 0);
	model(&mo, "float32", "index", "streaming", "7777");
	run_pipeline(&b, &mo, 0);
	assert_same_profiles(&a.po, &b.po, 0);
	free_run(&a);
	free_run(&b);
}

/* ---- measured equals estimated ---------------------------------------------------------------- */

static void check_against_estimator(const char *pos, const char *sel, const char *temp,
				    const char *block)
{
	struct run R;
	sm_model_options mo;
	sm_est_input in;
	sm_estimate e;
	sm_error err;
	size_t si, i, n;
	uint64_t h;

	model(&mo, pos, sel, temp, block);
	run_pipeline(&R, &mo, 1);
	assert_int_equal(sm_est_input_from_base(&in, W.dir, 99, &mo, &err), 0);
	assert_int_equal(in.nhalos, R.r.nhalos);
	for (h = 0; h < in.nhalos; h++) {
		assert_int_equal(in.halos[h].group_index, R.r.halos[h].group_index);
		in.halos[h].sphere_cells = R.r.halos[h].sphere_cells;
	}
	assert_int_equal(sm_estimate_compute(&in, &mo, &e, &err), 0);
	n = sm_prof_stage_count(R.p);
	for (si = 0; si < e.nstages; si++) {
		const sm_est_stage *es = &e.stages[si];
		int found = 0;

		for (i = 0; i < n; i++) {
			sm_prof_stage_info st;

			assert_int_equal(sm_prof_stage_get(R.p, i, &st), 0);
			if (strcmp(st.id, es->id) != 0 || st.instance != es->instance)
				continue;
			found = 1;
			if (st.requested_peak != es->peak || st.requested_live_end != es->live_after)
				fail_msg("%s/%s/%s stage %s (halo %lld): measured peak %llu live %llu, "
					 "estimated %llu live %llu", pos, sel, temp, es->id,
					 (long long)es->instance,
					 (unsigned long long)st.requested_peak,
					 (unsigned long long)st.requested_live_end,
					 (unsigned long long)es->peak,
					 (unsigned long long)es->live_after);
		}
		assert_true(found);
	}
	/* Every halo's peak, not only the largest one's. */
	for (i = 0; i < n; i++) {
		sm_prof_stage_info st;

		sm_prof_stage_get(R.p, i, &st);
		if (strcmp(st.id, "histogram_write") == 0)
			assert_int_equal(st.requested_peak, e.halo_peak[st.instance]);
	}
	/* Every tracked array carries one of the model's names with the model's size. */
	for (i = 0; i < sm_prof_array_count(R.p); i++) {
		sm_prof_array_info a;
		int found = 0;

		sm_prof_array_get(R.p, i, &a);
		for (si = 0; si < e.nstages && !found; si++) {
			size_t j;

			for (j = 0; j < e.stages[si].narrays; j++) {
				const sm_est_array *ea = &e.stages[si].arrays[j];

				if (strcmp(ea->name, a.name) == 0 &&
				    strcmp(e.stages[si].id, a.stage) == 0 &&
				    (!e.stages[si].per_halo || a.instance == e.stages[si].instance)) {
					assert_int_equal(ea->requested, a.requested);
					found = 1;
				}
			}
			if (e.stages[si].per_halo && strcmp(e.stages[si].id, a.stage) == 0)
				found = found || a.instance != e.stages[si].instance;
		}
		if (!found)
			fail_msg("array '%s' in stage '%s' is not in the model", a.name, a.stage);
	}
	assert_int_equal(sm_prof_live_requested(R.p), 0);
	sm_estimate_release(&e);
	sm_est_input_release(&in);
	free_run(&R);
}

static void test_measured_equals_estimated(void **state)
{
	(void)state;
	check_against_estimator("float32", "index", "in-memory", NULL);
	check_against_estimator("float64", "index", "in-memory", NULL);
	check_against_estimator("float32", "mask", "in-memory", NULL);
	check_against_estimator("float64", "mask", "streaming", "50000");
	check_against_estimator("float32", "index", "streaming", "1000000");
}

/* ---- results that are honest about being empty, and failures --------------------------------- */

static int run_expect(const sm_model_options *mo, sm_prof *p, uint64_t max_mem,
		      volatile sig_atomic_t *cancel, sm_pipeline_progress_fn cb, const char *base,
		      char **out, sm_pipeline_result *r, sm_error *err)
{
	sm_pipeline_options o;
	int rc;

	sm_error_clear(err);
	*out = tu_tmpdir();
	sm_pipeline_options_init(&o);
	o.base_path = base;
	o.snap = 99;
	o.model = *mo;
	o.out_dir = *out;
	o.max_mem = max_mem;
	o.cancel = cancel;
	o.progress = cb;
	o.progress_ctx = (void *)cancel;
	rc = sm_pipeline_run(&o, p, r, err);
	return rc;
}

static void test_empty_cut(void **state)
{
	sm_model_options mo;
	sm_pipeline_result r;
	sm_error err;
	tu_profiles po;
	char *out, *pp;

	(void)state;
	model(&mo, "float32", "index", "in-memory", NULL);
	mo.mass_min = 1e20;
	assert_int_equal(run_expect(&mo, NULL, 0, NULL, NULL, W.dir, &out, &r, &err), 0);
	assert_int_equal(r.nhalos, 0);
	assert_true(r.empty);
	pp = tu_path(out, "profiles.hdf5");
	tu_profiles_read(pp, &po);
	assert_int_equal(po.k, 0);
	tu_profiles_free(&po);
	free(pp);
	sm_pipeline_result_release(&r);
	tu_rmtree(out);
	free(out);
}

static void test_injected_oom(void **state)
{
	static const char *const names[] = {"GroupPos", "halo_r200", "ElectronAbundance",
					    "temperature", "Coordinates", "io_buffer",
					    "index_cell_fill", "sphere_cells", "radius",
					    "selected_positions", "histogram"};
	sm_model_options mo;
	size_t i;

	(void)state;
	model(&mo, "float32", "index", "in-memory", NULL);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		sm_pipeline_result r;
		sm_prof_options popt;
		sm_prof *p = NULL;
		sm_error err;
		char *out;
		int rc;

		sm_prof_options_init(&popt);
		popt.timeline_hz = 0;
		assert_int_equal(sm_prof_create(&popt, &p, &err), 0);
		sm_prof_inject_failure(p, names[i], strcmp(names[i], "radius") == 0 ? 3 : 1);
		rc = run_expect(&mo, p, 0, NULL, NULL, W.dir, &out, &r, &err);
		assert_int_equal(rc, SM_ENOMEM);
		assert_non_null(strstr(err.msg, names[i]));
		assert_true(err.needed_bytes > 0 || strcmp(names[i], "halo_r200") == 0 ||
			    strcmp(names[i], "sphere_cells") == 0);
		if (strcmp(names[i], "Coordinates") == 0)
			assert_int_equal(err.needed_bytes, 12 * W.n);
		assert_int_equal(tu_entries(out), 0);   /* no partial file, no temporary */
		assert_int_equal(sm_prof_live_requested(p), 0);
		sm_pipeline_result_release(&r);
		sm_prof_free(p);
		tu_rmtree(out);
		free(out);
	}
}

static void test_max_mem(void **state)
{
	sm_model_options mo;
	sm_pipeline_result r;
	sm_error err;
	char *out;

	(void)state;
	model(&mo, "float32", "index", "in-memory", NULL);
	assert_int_equal(run_expect(&mo, NULL, 10 * W.n, NULL, NULL, W.dir, &out, &r, &err),
			 SM_ELIMIT);
	assert_true(err.needed_bytes > 10 * W.n);
	assert_non_null(strstr(err.msg, "--max-mem"));
	assert_int_equal(tu_entries(out), 0);
	sm_pipeline_result_release(&r);
	tu_rmtree(out);
	free(out);
}

static void cancel_at_build_index(const sm_pipeline_progress *p, void *ctx)
{
	volatile sig_atomic_t *c = ctx;

	if (strcmp(p->stage, "mask_arrays") == 0 && p->halo == 2)
		*c = 15;
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
	model(&mo, "float32", "index", "in-memory", NULL);
	assert_int_equal(run_expect(&mo, p, 0, &flag, cancel_at_build_index, W.dir, &out, &r, &err),
			 SM_EINTR);
	assert_int_equal(err.signal, 15);
	assert_string_equal(r.stage, "mask_arrays");
	assert_int_equal(r.instance, 2);
	assert_int_equal(tu_entries(out), 0);
	assert_int_equal(sm_prof_live_requested(p), 0);
	sm_pipeline_result_release(&r);
	sm_prof_free(p);
	tu_rmtree(out);
	free(out);
}

/* Copies the mock into a fresh directory and overwrites one value of one dataset. */
static char *corrupt_copy(const char *sub, const char *dataset, hsize_t row, hsize_t col,
			  double value, char *file_out, size_t len)
{
	char *dir = tu_tmpdir(), cmd[8192], path[4096];
	int f;

	snprintf(cmd, sizeof(cmd), "cp -r '%s'/. '%s'/", W.dir, dir);
	assert_int_equal(system(cmd), 0);
	for (f = 0; f < 16; f++) {
		hid_t file, d, s;
		hsize_t start[2] = {row, col}, one[2] = {1, 1}, dims[2];
		int rank;

		snprintf(path, sizeof(path), "%s/%s%d.hdf5", dir, sub, f);
		if (!tu_exists(path))
			break;
		file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
		assert_true(file >= 0);
		H5E_BEGIN_TRY { d = H5Dopen2(file, dataset, H5P_DEFAULT); } H5E_END_TRY;
		if (d < 0) {
			H5Fclose(file);
			continue;
		}
		s = H5Dget_space(d);
		rank = H5Sget_simple_extent_dims(s, dims, NULL);
		if (dims[0] <= row) {
			H5Sclose(s);
			H5Dclose(d);
			H5Fclose(file);
			continue;
		}
		{
			hid_t ms = H5Screate_simple(1, one, NULL);

			H5Sselect_hyperslab(s, H5S_SELECT_SET, start, NULL, one, NULL);
			assert_true(H5Dwrite(d, H5T_NATIVE_DOUBLE, ms, s, H5P_DEFAULT, &value) >= 0);
			H5Sclose(ms);
		}
		(void)rank;
		H5Sclose(s);
		H5Dclose(d);
		H5Fclose(file);
		snprintf(file_out, len, "%s", path);
		return dir;
	}
	fail_msg("no chunk with %s", dataset);
	return NULL;
}

static void test_bad_cells_and_halos(void **state)
{
	sm_model_options mo;
	sm_pipeline_result r;
	sm_error err;
	char file[4096], *dir, *out;
	sm_pipeline_options o;

	(void)state;
	model(&mo, "float32", "index", "in-memory", NULL);

	dir = corrupt_copy("snapdir_099/snap_099.", "/PartType0/InternalEnergy", 5, 0, NAN, file,
			   sizeof(file));
	assert_int_equal(run_expect(&mo, NULL, 0, NULL, NULL, dir, &out, &r, &err), SM_EFORMAT);
	assert_non_null(strstr(err.msg, file));
	assert_non_null(strstr(err.msg, "InternalEnergy[5]"));
	assert_int_equal(tu_entries(out), 0);
	sm_pipeline_result_release(&r);
	tu_rmtree(out);
	free(out);
	tu_rmtree(dir);
	free(dir);

	dir = corrupt_copy("snapdir_099/snap_099.", "/PartType0/InternalEnergy", 7, 0, -1.0, file,
			   sizeof(file));
	mo.temperature = SM_TEMP_STREAMING;
	mo.stream_block = 3;
	assert_int_equal(run_expect(&mo, NULL, 0, NULL, NULL, dir, &out, &r, &err), SM_EFORMAT);
	assert_non_null(strstr(err.msg, file));
	assert_non_null(strstr(err.msg, "InternalEnergy[7]"));
	mo.temperature = SM_TEMP_IN_MEMORY;
	sm_pipeline_result_release(&r);
	tu_rmtree(out);
	free(out);
	tu_rmtree(dir);
	free(dir);

	dir = corrupt_copy("snapdir_099/snap_099.", "/PartType0/Coordinates", 3, 1, INFINITY, file,
			   sizeof(file));
	assert_int_equal(run_expect(&mo, NULL, 0, NULL, NULL, dir, &out, &r, &err), SM_EFORMAT);
	assert_non_null(strstr(err.msg, file));
	assert_non_null(strstr(err.msg, "Coordinates[3]"));
	sm_pipeline_result_release(&r);
	tu_rmtree(out);
	free(out);
	tu_rmtree(dir);
	free(dir);

	/* The most massive halo with R200 = 0 (and then NaN). */
	{
		double bad[2] = {0.0, NAN};
		int i;

		for (i = 0; i < 2; i++) {
			char gname[64], *cat;
			sm_catalog c;
			uint64_t first = 0;
			int f;

			/* Find the chunk and row of the most massive halo's group. */
			memset(&c, 0, sizeof(c));
			assert_int_equal(sm_catalog_open_base(&c, W.dir, 99, &err), 0);
			for (f = 0; f < c.nfiles; f++) {
				char p[4096];
				hid_t fh, a;
				int64_t cnt = 0;

				snprintf(p, sizeof(p), c.pattern, (long long)f);
				fh = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
				a = H5Aopen_by_name(fh, "Header", "Ngroups_ThisFile", H5P_DEFAULT,
						    H5P_DEFAULT);
				H5Aread(a, H5T_NATIVE_INT64, &cnt);
				H5Aclose(a);
				H5Fclose(fh);
				if ((uint64_t)W.halos[0].group < first + (uint64_t)cnt)
					break;
				first += (uint64_t)cnt;
			}
			sm_catalog_release(&c);
			snprintf(gname, sizeof(gname), "groups_099/fof_subhalo_tab_099.%d", f);
			dir = tu_tmpdir();
			{
				char cmd[8192], p[4096];
				hid_t fh, d, s, ms;
				hsize_t start = (hsize_t)W.halos[0].group - first, one = 1;

				snprintf(cmd, sizeof(cmd), "cp -r '%s'/. '%s'/", W.dir, dir);
				assert_int_equal(system(cmd), 0);
				snprintf(p, sizeof(p), "%s/%s.hdf5", dir, gname);
				fh = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
				assert_true(fh >= 0);
				d = H5Dopen2(fh, "/Group/Group_R_Crit200", H5P_DEFAULT);
				s = H5Dget_space(d);
				ms = H5Screate_simple(1, &one, NULL);
				H5Sselect_hyperslab(s, H5S_SELECT_SET, &start, NULL, &one, NULL);
				assert_true(H5Dwrite(d, H5T_NATIVE_DOUBLE, ms, s, H5P_DEFAULT,
						     &bad[i]) >= 0);
				H5Sclose(ms);
				H5Sclose(s);
				H5Dclose(d);
				H5Fclose(fh);
				snprintf(file, sizeof(file), "%s", p);
			}
			cat = NULL;
			(void)cat;
			sm_pipeline_options_init(&o);
			assert_int_equal(run_expect(&mo, NULL, 0, NULL, NULL, dir, &out, &r, &err),
					 SM_EFORMAT);
			assert_non_null(strstr(err.msg, file));
			snprintf(gname, sizeof(gname), "group %lld", (long long)W.halos[0].group);
			assert_non_null(strstr(err.msg, gname));
			assert_int_equal(tu_entries(out), 0);
			sm_pipeline_result_release(&r);
			tu_rmtree(out);
			free(out);
			tu_rmtree(dir);
			free(dir);
		}
	}
}

static void test_grid_side(void **state)
{
	(void)state;
	assert_int_equal(sm_model_grid_side(0), 1);
	assert_int_equal(sm_model_grid_side(255), 1);
	assert_int_equal(sm_model_grid_side(256), 2);
	assert_int_equal(sm_model_grid_side(10000000), 67);
	assert_int_equal(sm_model_grid_side(UINT64_C(14454722210)), 512);
}

/* The most cells any halo's profile holds (counts and sf_counts over its bins). */
static int64_t largest_sphere(const tu_profiles *p)
{
	int64_t most = 0, n;
	uint64_t h;
	int b;

	for (h = 0; h < p->k; h++) {
		for (n = 0, b = 0; b < SM_MODEL_RBINS; b++)
			n += p->counts[h * SM_MODEL_RBINS + b] + p->sf[h * SM_MODEL_RBINS + b];
		most = n > most ? n : most;
	}
	return most;
}

/*
 * Threads, huge pages and first touch change nothing in the result: a mock big enough for the
 * large-array path (12 MB fields, >= PREFAULT_MIN_BYTES) and for spheres the per-halo stages share
 * out to two threads (more than 2 x 65,536 cells: histogram_write's chunks on two parts) run by
 * the CLI with the defaults and with SNAPMEM_THREADS=1 SNAPMEM_HUGEPAGES=0 gives the same
 * profiles.hdf5 datasets bit for bit, and both agree with the index/mask cross-check (every
 * sphere sorted cell found once); the mask strategy, whose walks over the cells are shared out
 * to the threads too, gives its same datasets with one thread.
 */
static void test_threads_and_pages_change_nothing(void **state)
{
	char *dir = tu_tmpdir(), *data = tu_path(dir, "mock"), *o1 = tu_path(dir, "a"),
	     *o2 = tu_path(dir, "b"), *o3 = tu_path(dir, "c"), *o4 = tu_path(dir, "d"), *p1, *p2,
	     *p3, *p4;
	tu_profiles a, b, c, d;
	tu_result r;

	(void)state;
	r = tu_run("mock", data, "--gas", "1200000", "--halos", "4", "--files", "3", "--seed", "11",
		   NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	r = tu_run("run", "--base-path", data, "--snap", "99", "--out", o1, "--no-profile", NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	setenv("SNAPMEM_THREADS", "1", 1);
	setenv("SNAPMEM_HUGEPAGES", "0", 1);
	r = tu_run("run", "--base-path", data, "--snap", "99", "--out", o2, "--no-profile", NULL);
	unsetenv("SNAPMEM_THREADS");
	unsetenv("SNAPMEM_HUGEPAGES");
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	r = tu_run("run", "--base-path", data, "--snap", "99", "--out", o3, "--no-profile",
		   "--select", "mask", NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	setenv("SNAPMEM_THREADS", "1", 1);
	r = tu_run("run", "--base-path", data, "--snap", "99", "--out", o4, "--no-profile",
		   "--select", "mask", NULL);
	unsetenv("SNAPMEM_THREADS");
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	p1 = tu_path(o1, "profiles.hdf5");
	p2 = tu_path(o2, "profiles.hdf5");
	p3 = tu_path(o3, "profiles.hdf5");
	p4 = tu_path(o4, "profiles.hdf5");
	tu_profiles_read(p1, &a);
	tu_profiles_read(p2, &b);
	tu_profiles_read(p3, &c);
	tu_profiles_read(p4, &d);
	assert_true(a.k > 0);
	assert_true(largest_sphere(&a) > 2 * 65536);
	assert_same_profiles(&a, &b, 0);
	assert_same_profiles(&a, &c, 1e-12);
	assert_same_profiles(&c, &d, 0);
	tu_profiles_free(&a);
	tu_profiles_free(&b);
	tu_profiles_free(&c);
	tu_profiles_free(&d);
	free(p1);
	free(p2);
	free(p3);
	free(p4);
	tu_rmtree(dir);
	free(dir);
	free(data);
	free(o1);
	free(o2);
	free(o3);
	free(o4);
}

/*
 * The sphere scan takes grid cells that lie wholly inside a sphere without testing their cells'
 * distances: on a small box (halos of several grid widths, so that most of a sphere's cells lie
 * in such grid cells), the index strategy still finds exactly the mask strategy's cells, which
 * test every cell, for float32 and float64 positions.
 */
static void test_inside_cells_equal_mask(void **state)
{
	static const char *const pos[2] = {"float32", "float64"};
	char *dir = tu_tmpdir(), *data = tu_path(dir, "mock"), *oi = tu_path(dir, "i"),
	     *om = tu_path(dir, "m"), *pi, *pm;
	tu_profiles a, b;
	tu_result r;
	int k;

	(void)state;
	r = tu_run("mock", data, "--gas", "200000", "--halos", "4", "--files", "2", "--seed", "5",
		   "--box", "12000", NULL);
	assert_int_equal(r.status, 0);
	tu_result_free(&r);
	pi = tu_path(oi, "profiles.hdf5");
	pm = tu_path(om, "profiles.hdf5");
	for (k = 0; k < 2; k++) {
		r = tu_run("run", "--base-path", data, "--snap", "99", "--out", oi, "--force",
			   "--no-profile", "--positions", pos[k], NULL);
		assert_int_equal(r.status, 0);
		tu_result_free(&r);
		r = tu_run("run", "--base-path", data, "--snap", "99", "--out", om, "--force",
			   "--no-profile", "--positions", pos[k], "--select", "mask", NULL);
		assert_int_equal(r.status, 0);
		tu_result_free(&r);
		tu_profiles_read(pi, &a);
		tu_profiles_read(pm, &b);
		assert_true(a.k > 0);
		assert_same_profiles(&a, &b, 1e-12);
		tu_profiles_free(&a);
		tu_profiles_free(&b);
	}
	free(pi);
	free(pm);
	tu_rmtree(dir);
	free(dir);
	free(data);
	free(oi);
	free(om);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grid_side),
		cmocka_unit_test(test_float64_matches_brute_force),
		cmocka_unit_test(test_float32_close_to_float64),
		cmocka_unit_test(test_mask_equals_index),
		cmocka_unit_test(test_streaming_equals_in_memory),
		cmocka_unit_test(test_measured_equals_estimated),
		cmocka_unit_test(test_empty_cut),
		cmocka_unit_test(test_injected_oom),
		cmocka_unit_test(test_max_mem),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_bad_cells_and_halos),
		cmocka_unit_test(test_threads_and_pages_change_nothing),
		cmocka_unit_test(test_inside_cells_equal_mask),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
