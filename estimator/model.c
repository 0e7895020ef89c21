/*
 * The estimator's model: a pure function from header facts, the selected halos and the model options
 * to the pipeline's stages, array by array, exactly as docs/MODEL.md lays them out. It replays the
 * pipeline's allocations and frees in order on a tiny simulated heap, so that "peak" and "live after"
 * come out of the same event list the pipeline follows rather than hand-summed formulas.
 *
 * Every byte count is overflow-checked: a count whose bytes do not fit 64 bits is SM_EOVERFLOW, one
 * line naming the source and the array. Allocated bytes are jemalloc's size class of each request
 * (sm_prof_nallocx), never computed here.
 *
 * MPI ranks (--ranks R > 1): figures are per rank. Each rank holds its share ceil(N / R) of the gas
 * cells (the streaming-by-chunk design of issue 9 with the cells spread evenly), the full halo and
 * group tables, and at most its share of any sphere (worst case: a whole sphere on one rank).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "snapmem/estimator.h"
#include "snapmem/profiler.h"
#include "snapmem/units.h"

#include "internal.h"

/*
 * The process baseline: jemalloc stats.allocated that `snapmem run` holds when its profiler starts
 * (memory.json baseline.allocated): libraries, HDF5's global state after the pre-run estimate
 * opened the snapshot header and the catalogue, jemalloc metadata, the profiler's own tables.
 * Measured on Debian 12 (hdf5 1.10.8, jemalloc 5.3.0, x86-64): 975,328 bytes, identical over
 * repeated runs and over mock sizes from 10^6 to 10^7 cells. A bare process that only calls
 * H5open() and sm_prof_create() holds 680,288 (docs/ESTIMATOR.md). Re-measure when a library or
 * the run's start-up changes.
 */
#define SM_EST_BASELINE_BYTES UINT64_C(975328)

#define IO_BUFFER_BYTES UINT64_C(1048576)
#define HISTOGRAM_BYTES UINT64_C(25200)
#define GRID_CELLS_PER_CELL 32u
#define GRID_MAX_SIDE 512u

uint64_t sm__est_dtype_size(sm_dtype t)
{
	switch (t) {
	case SM_DTYPE_U8: return 1;
	case SM_DTYPE_I32: case SM_DTYPE_U32: case SM_DTYPE_F32: return 4;
	case SM_DTYPE_I64: case SM_DTYPE_U64: case SM_DTYPE_F64: return 8;
	default: return 0;
	}
}

const char *sm__est_dtype_name(sm_dtype t)
{
	switch (t) {
	case SM_DTYPE_U8: return "uint8";
	case SM_DTYPE_I32: return "int32";
	case SM_DTYPE_U32: return "uint32";
	case SM_DTYPE_I64: return "int64";
	case SM_DTYPE_U64: return "uint64";
	case SM_DTYPE_F32: return "float32";
	case SM_DTYPE_F64: return "float64";
	default: return "none";
	}
}

uint64_t sm_est_baseline_bytes(void)
{
	return SM_EST_BASELINE_BYTES;
}

size_t sm_est_assumptions(const sm_est_input *in, const sm_estimate *e, const char **out,
			  size_t max)
{
	return sm__est_assumptions(in, &e->options, e, out, max);
}

/* ---- the cosmology behind the sphere-cell model --------------------------------------------- */

#define G_CGS 6.6743e-8
#define MPC_CM 3.0856775814913673e24
#define MSUN_G 1.989e33          /* TNG's unit mass is 1e10 Msun/h = 1.989e43 g / h */

/* Critical density today in code units (comoving, the h factors of code units cancel). */
static double rho_crit0_code(const sm_header *h)
{
	double h0_per_h = 1e7 / MPC_CM;  /* 100 km/s/Mpc in 1/s */
	double rho_cgs = 3.0 * h0_per_h * h0_per_h / (8.0 * M_PI * G_CGS);  /* g/cm^3 per h^2 */
	double ul = h->unit_length_cm > 0 ? h->unit_length_cm : 3.085678e21;
	double um = h->unit_mass_g > 0 ? h->unit_mass_g : 1.989e43;

	return rho_cgs * ul * ul * ul / um;
}

double sm__est_mean_cell_mass(const sm_header *h)
{
	double box = h->box_size;

	if (h->mass_table[0] > 0)
		return h->mass_table[0];
	if (h->npart_total[0] == 0 || !(box > 0) || !(h->omega_baryon > 0))
		return 0;
	return h->omega_baryon * rho_crit0_code(h) * box * box * box / (double)h->npart_total[0];
}

double sm__est_r200(const sm_header *h, double m200_msun)
{
	double z = h->redshift > 0 ? h->redshift : 0;
	double ok = 1.0 - h->omega0 - h->omega_lambda;
	double e2 = h->omega0 * pow(1 + z, 3) + h->omega_lambda + ok * pow(1 + z, 2);
	double hp = h->hubble_param > 0 ? h->hubble_param : 1;
	double um = h->unit_mass_g > 0 ? h->unit_mass_g : 1.989e43;
	double m_code = m200_msun * MSUN_G * hp / um;
	double r_phys;

	if (!(e2 > 0) || !(m200_msun > 0))
		return 0;
	r_phys = cbrt(3.0 * m_code / (4.0 * M_PI * 200.0 * rho_crit0_code(h) * e2));
	return r_phys * (1 + z);  /* comoving code length */
}

static double nfw_m(double y)
{
	return log1p(y) - y / (1.0 + y);
}

uint64_t sm__est_model_sphere_cells(const sm_header *h, double m200_msun, double r200)
{
	double hp = h->hubble_param > 0 ? h->hubble_param : 1;
	double um = h->unit_mass_g > 0 ? h->unit_mass_g : 1.989e43;
	double mcell = sm__est_mean_cell_mass(h);
	double m_code, fb, r2, mgas, cells;
	uint64_t n = h->npart_total[0];

	if (!(m200_msun > 0) || !(mcell > 0) || !(h->omega0 > 0) || n == 0)
		return 0;
	if (!(r200 > 0))
		r200 = sm__est_r200(h, m200_msun);
	m_code = m200_msun * MSUN_G * hp / um;
	fb = h->omega_baryon / h->omega0;
	r2 = 2.0 * r200;
	mgas = fb * m_code * nfw_m(2.0 * SM__EST_NFW_C) / nfw_m(SM__EST_NFW_C) +
	       h->omega_baryon * rho_crit0_code(h) * 4.0 / 3.0 * M_PI * r2 * r2 * r2;
	cells = ceil(mgas / mcell);
	if (!(cells >= 1))
		return 1;
	if (cells >= (double)n)
		return n;
	return (uint64_t)cells;
}

size_t sm__est_assumptions(const sm_est_input *in, const sm_model_options *o, const sm_estimate *e,
			   const char **out, size_t max)
{
	size_t n = 0;
	const char *src = e->sphere_cells_source != NULL ? e->sphere_cells_source : "model";

#define ADD(s) do { if (n < max) out[n++] = (s); } while (0)
	if (strcmp(src, "override") == 0) {
		ADD("--sphere-cells gives the cells within 2 R200 of the largest halo; the others are "
		    "scaled by M200 relative to it (by the same count when masses are unknown)");
	} else if (strcmp(src, "calibrated") == 0) {
		ADD("sphere cells measured by an earlier run (memory.json run.halos[].sphere_cells), "
		    "matched by instance; unmatched halos get the model scaled by the measured/model "
		    "ratio of the matched ones");
	}
	ADD("gas cells within 2 R200 = (OmegaBaryon / Omega0) M_NFW(< 2 R200) / mean gas-cell mass "
	    "+ the mean baryon background in the sphere's volume (OmegaBaryon rho_crit0 (4/3) pi "
	    "(2 R200)^3)");
	ADD("NFW profile with concentration c = 4 for every halo (typical of cluster masses): "
	    "M(< 2 R200) = M200 m(2c) / m(c), m(y) = ln(1 + y) - y / (1 + y), about 1.62 M200");
	ADD("mean gas-cell mass = MassTable[0] when non-zero, else OmegaBaryon rho_crit0 BoxSize^3 / N "
	    "(all baryons counted as gas: stars make real cells lighter, so spheres hold a few percent "
	    "more cells)");
	ADD("R200 from the catalogue when known, else (3 M200 / (4 pi 200 rho_crit(z)))^(1/3), "
	    "comoving");
	if (in != NULL && in->nhalos > 0 && in->halos[0].group_index < 0 &&
	    strcmp(src, "override") != 0) {
		ADD("halo masses not known individually: a power-law mass function N(>M) = 281 (M / "
		    "1e14 Msun)^-a through the 280 TNG300-1 halos above 1e14 Msun, the largest at "
		    "1.5e15 Msun/h (a ~ 1.82)");
	}
	if (in != NULL && strcmp(in->source_kind, "embedded") == 0)
		ADD("Ngroups_Total = 17,625,892 for TNG300-1 snapshot 99, from the TNG public data "
		    "release");
	if (o->ranks > 1)
		ADD("per rank: ceil(N / R) gas cells, the full halo and group tables, and up to a whole "
		    "sphere's cells on one rank (worst case)");
	ADD("only the arrays docs/MODEL.md lists are predicted (plus the process baseline): HDF5's "
	    "per-file metadata while a file is open and the profiler's own tables are not");
#undef ADD
	return n;
}

/* ---- the simulated heap ---------------------------------------------------------------------- */

#define MAX_LIVE 32

struct live {
	const char *name;
	uint64_t req, alloc;
};

struct sim {
	const sm_est_input *in;
	struct live live[MAX_LIVE];
	size_t nlive;
	uint64_t req, alloc;        /* live totals */
	sm_est_stage *st;           /* current stage */
	sm_error *err;
};

static int overflow(struct sim *s, const char *name, uint64_t count, sm_dtype t)
{
	return sm_error_set(s->err, SM_EOVERFLOW,
			    "'%s': %s of %llu %s elements: byte count does not fit in 64 bits",
			    s->in->source_name, name, (unsigned long long)count, sm__est_dtype_name(t));
}

static void stage_begin(struct sim *s, sm_estimate *e, const char *id, int per_halo,
			int64_t instance)
{
	sm_est_stage *st = &e->stages[e->nstages++];

	memset(st, 0, sizeof(*st));
	st->id = id;
	st->per_halo = per_halo;
	st->instance = instance;
	st->peak = s->req;
	st->peak_allocated = s->alloc;
	s->st = st;
}

static int alloc(struct sim *s, const char *name, sm_dtype t, uint64_t count, const char *freed_in)
{
	sm_est_stage *st = s->st;
	sm_est_array *a;
	uint64_t req, al;

	if (sm_mul_u64(count, sm__est_dtype_size(t), &req) != 0)
		return overflow(s, name, count, t);
	al = sm_prof_nallocx(req);
	if (al < req)        /* beyond the largest size class: no prediction better than the request */
		al = req;
	if (sm_add_u64(s->req, req, &s->req) != 0 || sm_add_u64(s->alloc, al, &s->alloc) != 0)
		return sm_error_set(s->err, SM_EOVERFLOW,
				    "'%s': live bytes with %s do not fit in 64 bits",
				    s->in->source_name, name);
	if (st->narrays >= SM_EST_MAX_ARRAYS || s->nlive >= MAX_LIVE)
		return sm_error_set(s->err, SM_EINVAL, "estimator: too many arrays in stage '%s'",
				    st->id);
	a = &st->arrays[st->narrays++];
	a->name = name;
	a->dtype = t;
	a->count = count;
	a->requested = req;
	a->allocated = al;
	a->freed_in = freed_in;
	s->live[s->nlive].name = name;
	s->live[s->nlive].req = req;
	s->live[s->nlive].alloc = al;
	s->nlive++;
	if (s->req > st->peak)
		st->peak = s->req;
	if (s->alloc > st->peak_allocated)
		st->peak_allocated = s->alloc;
	return 0;
}

static void release(struct sim *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->nlive; i++) {
		if (strcmp(s->live[i].name, name) != 0)
			continue;
		s->req -= s->live[i].req;
		s->alloc -= s->live[i].alloc;
		s->live[i] = s->live[--s->nlive];
		return;
	}
}

static void stage_end(struct sim *s)
{
	s->st->live_after = s->req;
	s->st->live_after_allocated = s->alloc;
}

/* Grid side of the spatial index: clamp(floor(cbrt(N / 32)), 1, 512), exactly in integers. */
static uint64_t grid_side(uint64_t n)
{
	uint64_t g = 1;

	while (g < GRID_MAX_SIDE && (g + 1) * (g + 1) * (g + 1) * GRID_CELLS_PER_CELL <= n)
		g++;
	return g;
}

/* ---- sphere cells per halo ------------------------------------------------------------------- */

static int sphere_cells(const sm_est_input *in, const sm_model_options *o, uint64_t ncells,
			sm_estimate *e, sm_error *err)
{
	const sm_header *h = &in->header;
	uint64_t k = in->nhalos, i, nmeasured = 0;
	double sum_meas = 0, sum_model = 0, factor = 1;

	for (i = 0; i < k; i++)
		if (in->halos[i].sphere_cells > 0)
			nmeasured++;
	if (o->sphere_cells > 0)
		e->sphere_cells_source = "override";
	else if (nmeasured > 0)
		e->sphere_cells_source = "calibrated";
	else
		e->sphere_cells_source = "model";

	if (o->sphere_cells > 0) {
		double m0 = k > 0 ? in->halos[0].m200_msun : 0;

		for (i = 0; i < k; i++) {
			double m = in->halos[i].m200_msun;
			double v = (m0 > 0 && m > 0) ? floor((double)o->sphere_cells * m / m0 + 0.5)
						     : (double)o->sphere_cells;

			e->halo_sphere_cells[i] = v < 1 ? 1 : v >= (double)o->sphere_cells
							   ? o->sphere_cells : (uint64_t)v;
		}
	} else {
		for (i = 0; i < k; i++) {
			const sm_est_halo *hh = &in->halos[i];
			uint64_t m = sm__est_model_sphere_cells(h, hh->m200_msun, hh->r200);

			if (hh->sphere_cells > 0) {
				e->halo_sphere_cells[i] = hh->sphere_cells;
				if (m > 0) {
					sum_meas += (double)hh->sphere_cells;
					sum_model += (double)m;
				}
				continue;
			}
			/* no gas at all: every sphere is empty, nothing to model */
			if (m == 0 && nmeasured == 0 && ncells > 0)
				return sm_error_set(err, SM_EINVAL,
						    "'%s': cannot model the cells within 2 R200 of halo %llu "
						    "(mass, cosmology or box unknown): give --sphere-cells N",
						    in->source_name, (unsigned long long)i);
			e->halo_sphere_cells[i] = m;
		}
		if (nmeasured > 0 && sum_model > 0)
			factor = sum_meas / sum_model;
		for (i = 0; i < k && nmeasured > 0; i++) {
			if (in->halos[i].sphere_cells > 0)
				continue;
			if (e->halo_sphere_cells[i] == 0) {
				e->halo_sphere_cells[i] = 1;
				continue;
			}
			{
				double v = ceil((double)e->halo_sphere_cells[i] * factor);

				e->halo_sphere_cells[i] = v < 1 ? 1 : v >= 1.8e19 ? UINT64_MAX
									    : (uint64_t)v;
			}
		}
	}
	/* Per rank (and in any case): no sphere holds more cells than the rank has. */
	for (i = 0; i < k; i++)
		if (e->halo_sphere_cells[i] > ncells)
			e->halo_sphere_cells[i] = ncells;
	return 0;
}

/* ---- the estimate ---------------------------------------------------------------------------- */

void sm_estimate_release(sm_estimate *e)
{
	if (e == NULL)
		return;
	free(e->halo_sphere_cells);
	free(e->halo_peak);
	e->halo_sphere_cells = NULL;
	e->halo_peak = NULL;
	e->nhalos = 0;
}

/* Requested peak while halo i is processed: live_base + S(I + 4 + 4P) + 25,200 (index) or
 * live_base + N + S(4 + 4P) + 25,200 (mask). */
static int halo_peak(uint64_t base, uint64_t s, uint64_t n, uint64_t ib, uint64_t p,
		     sm_select sel, uint64_t *out)
{
	uint64_t per = (sel == SM_SELECT_INDEX ? ib : 0) + 4 + 4 * p, v;

	if (sm_mul_u64(s, per, &v) != 0 || sm_add_u64(v, base, &v) != 0 ||
	    sm_add_u64(v, HISTOGRAM_BYTES, &v) != 0)
		return SM_EOVERFLOW;
	if (sel == SM_SELECT_MASK && sm_add_u64(v, n, &v) != 0)
		return SM_EOVERFLOW;
	*out = v;
	return 0;
}

int sm_estimate_compute(const sm_est_input *in, const sm_model_options *o, sm_estimate *out,
			sm_error *err)
{
	struct sim s;
	sm_estimate *e = out;
	uint64_t n_total, n, g, k, b, grid, m, i, psize, ib, base_live;
	uint64_t largest = 0;
	int64_t inst = -1;
	sm_dtype pt, it;
	int rc = 0;
	size_t si;

	memset(e, 0, sizeof(*e));
	memset(&s, 0, sizeof(s));
	s.in = in;
	s.err = err;
	if (in == NULL || o == NULL)
		return sm_error_set(err, SM_EINVAL, "estimator: no input");
	if (o->positions != SM_DTYPE_F32 && o->positions != SM_DTYPE_F64)
		return sm_error_set(err, SM_EINVAL, "estimator: positions must be float32 or float64");
	if (o->ranks == 0)
		return sm_error_set(err, SM_EINVAL, "estimator: --ranks must be at least 1");
	if (in->nhalos > 0 && in->halos == NULL)
		return sm_error_set(err, SM_EINVAL, "estimator: %llu halos without a halo table",
				    (unsigned long long)in->nhalos);
	e->options = *o;

	n_total = in->header.npart_total[0];
	n = n_total / o->ranks + (n_total % o->ranks != 0);
	g = in->groups_total;
	k = in->nhalos;
	b = o->stream_block < n ? o->stream_block : n;
	pt = o->positions;
	psize = sm__est_dtype_size(pt);
	it = n <= UINT64_C(4294967295) ? SM_DTYPE_U32 : SM_DTYPE_U64;
	ib = sm__est_dtype_size(it);

	e->nhalos = k;
	e->halo_sphere_cells = calloc(k > 0 ? k : 1, sizeof(uint64_t));
	e->halo_peak = calloc(k > 0 ? k : 1, sizeof(uint64_t));
	if (e->halo_sphere_cells == NULL || e->halo_peak == NULL) {
		rc = sm_error_set(err, SM_ENOMEM, "estimator: cannot allocate %llu halo figures",
				  (unsigned long long)k);
		goto fail;
	}
	if ((rc = sphere_cells(in, o, n, e, err)) != 0)
		goto fail;
	for (i = 0; i < k; i++) {
		if (inst < 0 || e->halo_sphere_cells[i] > largest) {
			largest = e->halo_sphere_cells[i];
			inst = (int64_t)i;
		}
	}

	/* load_halos */
	stage_begin(&s, e, "load_halos", 0, -1);
	if ((rc = alloc(&s, "Group_M_Crit200", SM_DTYPE_F32, g, "load_halos")) != 0 ||
	    (rc = alloc(&s, "Group_R_Crit200", SM_DTYPE_F32, g, "load_halos")) != 0 ||
	    (g > UINT64_MAX / 3 ? (rc = overflow(&s, "GroupPos", g, SM_DTYPE_F32)) != 0
				: (rc = alloc(&s, "GroupPos", SM_DTYPE_F32, 3 * g, "load_halos")) != 0) ||
	    (rc = alloc(&s, "halo_index", SM_DTYPE_I64, k, NULL)) != 0 ||
	    (k > UINT64_MAX / 3 ? (rc = overflow(&s, "halo_center", k, SM_DTYPE_F64)) != 0
				: (rc = alloc(&s, "halo_center", SM_DTYPE_F64, 3 * k, NULL)) != 0) ||
	    (rc = alloc(&s, "halo_m200", SM_DTYPE_F64, k, NULL)) != 0 ||
	    (rc = alloc(&s, "halo_r200", SM_DTYPE_F64, k, NULL)) != 0)
		goto fail;
	release(&s, "Group_M_Crit200");
	release(&s, "Group_R_Crit200");
	release(&s, "GroupPos");
	stage_end(&s);

	/* load_gas_fields */
	stage_begin(&s, e, "load_gas_fields", 0, -1);
	if (o->temperature == SM_TEMP_IN_MEMORY) {
		if ((rc = alloc(&s, "InternalEnergy", SM_DTYPE_F32, n, "compute_temperature")) != 0 ||
		    (rc = alloc(&s, "ElectronAbundance", SM_DTYPE_F32, n, "compute_temperature")) != 0 ||
		    (rc = alloc(&s, "StarFormationRate", SM_DTYPE_F32, n, "compute_temperature")) != 0)
			goto fail;
	}
	stage_end(&s);

	/* compute_temperature */
	stage_begin(&s, e, "compute_temperature", 0, -1);
	if ((rc = alloc(&s, "temperature", SM_DTYPE_F32, n, NULL)) != 0)
		goto fail;
	if (o->temperature == SM_TEMP_STREAMING) {
		if ((rc = alloc(&s, "InternalEnergy", SM_DTYPE_F32, b, "compute_temperature")) != 0 ||
		    (rc = alloc(&s, "ElectronAbundance", SM_DTYPE_F32, b, "compute_temperature")) != 0 ||
		    (rc = alloc(&s, "StarFormationRate", SM_DTYPE_F32, b, "compute_temperature")) != 0)
			goto fail;
	}
	release(&s, "InternalEnergy");
	release(&s, "ElectronAbundance");
	release(&s, "StarFormationRate");
	stage_end(&s);

	/* load_positions */
	stage_begin(&s, e, "load_positions", 0, -1);
	if (n > UINT64_MAX / 3) {
		rc = overflow(&s, "Coordinates", n, pt);
		goto fail;
	}
	if ((rc = alloc(&s, "Coordinates", pt, 3 * n, NULL)) != 0)
		goto fail;
	if (pt == SM_DTYPE_F32) {
		if ((rc = alloc(&s, "io_buffer", SM_DTYPE_U8, IO_BUFFER_BYTES, "load_positions")) != 0)
			goto fail;
		release(&s, "io_buffer");
	}
	stage_end(&s);

	/* build_index */
	if (o->select == SM_SELECT_INDEX) {
		grid = grid_side(n);
		m = grid * grid * grid;
		stage_begin(&s, e, "build_index", 0, -1);
		if ((rc = alloc(&s, "index_cell_start", SM_DTYPE_U64, m + 1, NULL)) != 0 ||
		    (rc = alloc(&s, "index_cell_fill", SM_DTYPE_U64, m, "build_index")) != 0)
			goto fail;
		release(&s, "index_cell_fill");
		stage_end(&s);
	}
	base_live = s.req;

	/* Per-halo stages, for the largest sphere. */
	stage_begin(&s, e, "select_sphere", 1, inst);
	if (inst >= 0) {
		if (o->select == SM_SELECT_INDEX)
			rc = alloc(&s, "sphere_cells", it, largest, "histogram_write");
		else
			rc = alloc(&s, "sphere_mask", SM_DTYPE_U8, n, "histogram_write");
		if (rc != 0)
			goto fail;
	}
	stage_end(&s);
	stage_begin(&s, e, "radial_distance", 1, inst);
	if (inst >= 0 && (rc = alloc(&s, "radius", pt, largest, "histogram_write")) != 0)
		goto fail;
	stage_end(&s);
	stage_begin(&s, e, "mask_arrays", 1, inst);
	if (inst >= 0) {
		if (largest > UINT64_MAX / 3) {
			rc = overflow(&s, "selected_positions", largest, pt);
			goto fail;
		}
		if ((rc = alloc(&s, "selected_temperature", SM_DTYPE_F32, largest,
				"histogram_write")) != 0 ||
		    (rc = alloc(&s, "selected_positions", pt, 3 * largest, "histogram_write")) != 0)
			goto fail;
	}
	stage_end(&s);
	stage_begin(&s, e, "histogram_write", 1, inst);
	if (inst >= 0 && (rc = alloc(&s, "histogram", SM_DTYPE_U8, HISTOGRAM_BYTES,
				     "histogram_write")) != 0)
		goto fail;
	release(&s, "sphere_cells");
	release(&s, "sphere_mask");
	release(&s, "radius");
	release(&s, "selected_temperature");
	release(&s, "selected_positions");
	release(&s, "histogram");
	stage_end(&s);

	for (i = 0; i < k; i++) {
		if (halo_peak(base_live, e->halo_sphere_cells[i], n, ib, psize, o->select,
			      &e->halo_peak[i]) != 0) {
			rc = sm_error_set(err, SM_EOVERFLOW,
					  "'%s': peak of halo %llu does not fit in 64 bits",
					  in->source_name, (unsigned long long)i);
			goto fail;
		}
	}

	for (si = 0; si < e->nstages; si++) {
		if (e->stages[si].peak > e->peak) {
			e->peak = e->stages[si].peak;
			e->peak_stage = si;
		}
		if (e->stages[si].peak_allocated > e->peak_allocated)
			e->peak_allocated = e->stages[si].peak_allocated;
	}
	e->baseline = SM_EST_BASELINE_BYTES;
	if (sm_add_u64(e->peak_allocated, e->baseline, &e->peak_total) != 0) {
		rc = sm_error_set(err, SM_EOVERFLOW, "'%s': peak with the baseline does not fit in "
				  "64 bits", in->source_name);
		goto fail;
	}
	return 0;
fail:
	sm_estimate_release(e);
	e->nstages = 0;
	return rc;
}
