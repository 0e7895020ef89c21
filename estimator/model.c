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
 * The distributed strategy (--mpi, --ranks R > 1; docs/MPI.md): figures are one rank's, the same on
 * every rank whatever its share of the chunk files: one catalogue chunk's three columns (Gc groups,
 * the largest chunk's Ngroups_ThisFile) and the halo tables (load_halos), the halo
 * index over a grid sized by the largest sphere (build_index), every halo's profile sums and one
 * block of cells (stream_cells), nothing new in histogram_write. The chunk files' assignment to
 * ranks (largest first to the least-loaded rank) only says how many cells each rank streams.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "snapmem/estimator.h"
#include "snapmem/model.h"
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

/*
 * The baseline of one rank of the distributed run (`mpirun -np R snapmem run --mpi`): the same,
 * measured after MPI_Init. Open MPI 4.1.4 on Debian 12, one node: 4,989,232 bytes with 1 rank,
 * 5,034,464 to 5,128,048 with 2 and 3 ranks (ranks differ by up to 140 KB: per-peer state); the
 * largest is taken, so that the ranks-per-node arithmetic does not undercount.
 */
#define SM_EST_BASELINE_MPI_BYTES UINT64_C(5128048)

/*
 * The resident pages of the process beyond its tracked arrays at the run's peak (docs/MODEL.md
 * "The four peaks"): library text and data, HDF5's global state and caches, jemalloc's metadata,
 * the profiler's tables, sampler thread and the worker threads' stacks. Measured as VmHWM minus the
 * tracked arrays' requested peak on 1e7-cell mock runs (the profiler purging jemalloc's dirty pages
 * at every stage end): 19,124,920 (float32, index), 19,839,356 (float32, mask), 19,151,656 (float64,
 * index), 19,603,948 (float64, mask); their mean. Debian 12, hdf5 1.10.8, jemalloc 5.3.0, kernel
 * 6.18, 2 CPUs.
 */
#define SM_EST_BASELINE_RESIDENT_BYTES UINT64_C(19429970)

/*
 * The same for one rank of the distributed run (Open MPI 4.1.4 on one node: its shared-memory
 * segments and progress thread included), by the number of ranks R: mpirun -np 1, 2 on 1e7 cells
 * 24,181,544 and 24,439,592 (the larger rank); -np 3 and 4 (more ranks than this machine's 2 CPUs)
 * 27,495,208 and 27,503,400: the larger is taken for 3 ranks and more.
 */
static uint64_t baseline_resident_mpi(uint32_t ranks)
{
	return ranks <= 1 ? UINT64_C(24181544) : ranks == 2 ? UINT64_C(24439592)
							    : UINT64_C(27503400);
}

/*
 * The address space of one process (VmPeak): what is mapped before any array (libraries, thread
 * stacks, jemalloc's and the profiler's metadata: VmPeak of a 2,000-cell run, 50,917,520 bytes)
 * plus ADDRESS_PER_ALLOCATED_X1000 / 1000 times the size classes of every array the run allocates
 * (jemalloc retains the virtual memory of freed extents and grows its mappings geometrically, so
 * freed arrays stay mapped and each new mapping overshoots). The factor is the least-squares fit
 * of VmPeak - 50,917,520 against the arrays' size classes over four runs (1e6 float64 index, 3e6
 * float32 index, 1e7 float32 index, 1e7 float64 mask): 1.388; each run within 3 %. Not measured
 * beyond 1e7 cells (docs/MODEL.md).
 */
#define SM_EST_BASELINE_ADDRESS_BYTES UINT64_C(50917520)
#define ADDRESS_PER_ALLOCATED_X1000 UINT64_C(1388)

/*
 * One rank of the distributed run: VmPeak minus the allocated peak (a rank's block is reused, so
 * its arrays' size classes are about its peak): 98,897,408 (-np 1), 107,351,552 (-np 2),
 * 166,501,888 (-np 4, the larger of 3 and 4).
 */
static uint64_t baseline_address_mpi(uint32_t ranks)
{
	return ranks <= 1 ? UINT64_C(98897408) : ranks == 2 ? UINT64_C(107351552)
							    : UINT64_C(166501888);
}

/* jemalloc's smallest large size class with 4 KiB pages: requests from it up get whole pages of
 * their own (page-aligned extents); smaller ones share slabs and are counted at their size class. */
#define LARGE_MIN_BYTES UINT64_C(16384)
#define PAGE_BYTES UINT64_C(4096)
/* Page tables: one 8-byte entry per 4 KiB page (huge pages need fewer): 1/512 of resident. */
#define PTE_RATIO UINT64_C(512)

uint64_t sm__est_dtype_size(sm_dtype t)
{
	return sm_dtype_size(t);
}

const char *sm__est_dtype_name(sm_dtype t)
{
	return sm_dtype_name(t);
}

uint64_t sm_est_baseline_bytes(void)
{
	return SM_EST_BASELINE_BYTES;
}

uint64_t sm_est_array_resident(uint64_t requested, uint64_t allocated)
{
	if (requested < LARGE_MIN_BYTES)
		return allocated;
	if (requested > UINT64_MAX - (PAGE_BYTES - 1))
		return requested;
	return (requested + PAGE_BYTES - 1) / PAGE_BYTES * PAGE_BYTES;
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
	if (o->mpi && in != NULL && strcmp(in->source_kind, "embedded") == 0 &&
	    in->groups_chunk_max == 0)
		ADD("load_halos per rank reads the catalogue one chunk file at a time: the largest "
		    "chunk's Ngroups_ThisFile (Gc) is not in the embedded header and is taken as "
		    "ceil(Ngroups_Total / 600) = 29,377 groups (TNG300-1 groups_099 has 600 chunk files; "
		    "a real chunk may hold more)");
	if (o->mpi) {
		ADD("distributed (--mpi): figures are one rank's and the same on every rank whatever "
		    "its share: one catalogue chunk's columns (Gc groups) and the halo tables, the "
		    "halo index, every halo's profile sums "
		    "(25,200 B each) and one block of --stream-block cells; sphere cells do not enter");
		ADD("halo index: sphere radius 2 R200 per halo with R200 from the catalogue when known, "
		    "else modelled from M200 as above; grid side sm_pipeline_halo_grid_side(BoxSize, "
		    "largest radius)");
		ADD("the per-rank baseline (allocated bytes after MPI_Init, 5,128,048) was measured "
		    "with Open MPI 4.1.4 and 1 to 3 ranks on one node; the resident code of the "
		    "libraries and MPI's shared-memory segments (in VmHWM, about 20 MiB more per rank "
		    "on a small mock) are not predicted");
	}
	ADD("only the arrays docs/MODEL.md lists are predicted (plus the process baseline): HDF5's "
	    "per-file metadata while a file is open and the profiler's own tables are not");
#undef ADD
	return n;
}

/* ---- the simulated heap ---------------------------------------------------------------------- */

#define MAX_LIVE 32

struct live {
	const char *name;
	uint64_t req, alloc, res;
};

struct sim {
	const sm_est_input *in;
	struct live live[MAX_LIVE];
	size_t nlive;
	uint64_t req, alloc, res;   /* live totals */
	uint64_t cum_alloc;         /* size classes of every array allocated so far */
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
	st->peak_resident = s->res;
	s->st = st;
}

/*
 * An array of count elements of which only the first `touched` are ever written (a rank's stream
 * block when the rank has fewer cells than a block; touched = count otherwise): its resident pages
 * are the touched part's.
 */
static int alloc_part(struct sim *s, const char *name, sm_dtype t, uint64_t count,
		      uint64_t touched, const char *freed_in)
{
	sm_est_stage *st = s->st;
	sm_est_array *a;
	uint64_t req, al, res;

	if (sm_mul_u64(count, sm__est_dtype_size(t), &req) != 0)
		return overflow(s, name, count, t);
	al = sm_prof_nallocx(req);
	if (al < req)        /* beyond the largest size class: no prediction better than the request */
		al = req;
	res = sm_est_array_resident(req, al);
	s->cum_alloc = s->cum_alloc + al < s->cum_alloc ? UINT64_MAX : s->cum_alloc + al;
	if (touched < count) {
		uint64_t tb = touched * sm__est_dtype_size(t); /* < req: no overflow */
		uint64_t tr = sm_est_array_resident(tb, sm_prof_nallocx(tb) < tb ? tb
								   : sm_prof_nallocx(tb));

		if (tr < res)
			res = tr;
	}
	if (sm_add_u64(s->req, req, &s->req) != 0 || sm_add_u64(s->alloc, al, &s->alloc) != 0 ||
	    sm_add_u64(s->res, res, &s->res) != 0)
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
	a->resident = res;
	a->freed_in = freed_in;
	s->live[s->nlive].name = name;
	s->live[s->nlive].req = req;
	s->live[s->nlive].alloc = al;
	s->live[s->nlive].res = res;
	s->nlive++;
	if (s->req > st->peak)
		st->peak = s->req;
	if (s->alloc > st->peak_allocated)
		st->peak_allocated = s->alloc;
	if (s->res > st->peak_resident)
		st->peak_resident = s->res;
	return 0;
}

static int alloc(struct sim *s, const char *name, sm_dtype t, uint64_t count, const char *freed_in)
{
	return alloc_part(s, name, t, count, count, freed_in);
}

static void release(struct sim *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->nlive; i++) {
		if (strcmp(s->live[i].name, name) != 0)
			continue;
		s->req -= s->live[i].req;
		s->alloc -= s->live[i].alloc;
		s->res -= s->live[i].res;
		s->live[i] = s->live[--s->nlive];
		return;
	}
}

static void stage_end(struct sim *s)
{
	s->st->live_after = s->req;
	s->st->live_after_allocated = s->alloc;
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
	    sm_add_u64(v, SM_MODEL_HISTOGRAM_BYTES, &v) != 0)
		return SM_EOVERFLOW;
	if (sel == SM_SELECT_MASK && sm_add_u64(v, n, &v) != 0)
		return SM_EOVERFLOW;
	*out = v;
	return 0;
}

/* ---- the distributed strategy (docs/MPI.md) -------------------------------------------------- */

void sm_est_node_fit(uint64_t per_rank_total, uint64_t node_mem, uint32_t ranks,
		     uint64_t *ranks_per_node, uint64_t *nodes_needed)
{
	uint64_t per = per_rank_total > 0 ? per_rank_total : 1, rpn = node_mem / per;

	*ranks_per_node = rpn;
	*nodes_needed = rpn > 0 ? ranks / rpn + (ranks % rpn != 0) : 0;
}

/* The chunk files and, when their sizes are known, the cells of the most and least loaded rank. */
static int mpi_split(const sm_est_input *in, uint32_t ranks, sm_estimate *e, sm_error *err)
{
	uint64_t *load, mx = 0, mn = UINT64_MAX;
	uint32_t r;
	int64_t i;
	int rc;

	e->files = in->header.num_files > 0 ? in->header.num_files : 1;
	e->files_with_gas = -1;
	if (in->chunk_gas == NULL || in->nchunks <= 0)
		return 0;
	e->files = in->nchunks;
	e->files_with_gas = 0;
	for (i = 0; i < in->nchunks; i++)
		e->files_with_gas += in->chunk_gas[i] > 0;
	load = malloc((size_t)ranks * sizeof(*load));
	if (load == NULL)
		return sm_error_set(err, SM_ENOMEM, "estimator: cannot hold the cells of %u ranks",
				    ranks);
	rc = sm_model_assign_chunks(in->chunk_gas, (size_t)in->nchunks, ranks, load, NULL, err);
	if (rc == 0) {
		for (r = 0; r < ranks; r++) {
			if (load[r] > mx)
				mx = load[r];
			if (load[r] < mn)
				mn = load[r];
		}
		e->have_cells_per_rank = 1;
		e->cells_per_rank_max = mx;
		e->cells_per_rank_min = mn;
	}
	free(load);
	return rc;
}

/* Gc: the groups of the largest catalogue chunk, whose three columns the distributed run's
 * load_halos holds (docs/MPI.md). Read from the chunk headers when the source has a catalogue;
 * else ceil(G / 600) for the embedded TNG300-1 header (groups_099: 600 chunk files), G otherwise
 * (one chunk: never less than the run holds). */
static int groups_chunk(const sm_est_input *in, uint64_t *gc, sm_error *err)
{
	uint64_t g = in->groups_total, f = SM__EST_TNG300_GROUP_FILES;

	if (in->groups_chunk_max > g)
		return sm_error_set(err, SM_EINVAL, "'%s': the largest catalogue chunk holds %llu "
				    "groups, more than Ngroups_Total %llu", in->source_name,
				    (unsigned long long)in->groups_chunk_max, (unsigned long long)g);
	if (in->groups_chunk_max > 0)
		*gc = in->groups_chunk_max;
	else if (strcmp(in->source_kind, "embedded") == 0)
		*gc = g / f + (g % f != 0);
	else
		*gc = g;
	return 0;
}

/* build_index, stream_cells and histogram_write of one rank (load_halos is the serial one with
 * Gc groups in place of G). */
static int mpi_stages(struct sim *s, const sm_est_input *in, const sm_model_options *o,
		      sm_estimate *e)
{
	uint64_t n = in->header.npart_total[0], k = in->nhalos, i, hg, cells, per, hk, b;
	double smax = 0;
	sm_dtype pt = o->positions;
	int rc;

	for (i = 0; i < k; i++) {
		const sm_est_halo *h = &in->halos[i];
		double r = h->r200 > 0 ? h->r200 : sm__est_r200(&in->header, h->m200_msun);

		if (2.0 * r > smax)
			smax = 2.0 * r;
	}
	hg = k > 0 ? sm_model_halo_grid_side(in->header.box_size, smax) : 1;
	e->halo_grid_side = hg;
	e->sphere_radius_max = smax;
	cells = hg * hg * hg;  /* hg <= 64 */
	per = cells < SM_MODEL_HALO_GRID_CELLS_PER_HALO ? cells
						   : SM_MODEL_HALO_GRID_CELLS_PER_HALO;

	stage_begin(s, e, SM_STAGE_BUILD_INDEX, 0, -1);
	if ((rc = alloc(s, "halo_grid_start", SM_DTYPE_U32, cells + 1, SM_STAGE_HISTOGRAM_WRITE)) != 0)
		return rc;
	if (sm_mul_u64(k, per, &hk) != 0)
		return overflow(s, "halo_grid_halos", k, SM_DTYPE_U32);
	if ((rc = alloc(s, "halo_grid_halos", SM_DTYPE_U32, hk, SM_STAGE_HISTOGRAM_WRITE)) != 0)
		return rc;
	stage_end(s);

	stage_begin(s, e, SM_STAGE_STREAM_CELLS, 0, -1);
	if (sm_mul_u64(k, SM_MODEL_HISTOGRAM_BYTES, &hk) != 0)
		return overflow(s, "profile_sums", k, SM_DTYPE_U8);
	if ((rc = alloc(s, "profile_sums", SM_DTYPE_U8, hk, SM_STAGE_HISTOGRAM_WRITE)) != 0)
		return rc;
	b = o->stream_block < n ? o->stream_block : n;
	if (b > 0) {
		if (b > UINT64_MAX / 3)
			return overflow(s, "Coordinates", b, pt);
		/* a rank with fewer cells than a block writes only its cells into it */
		uint64_t tc = e->have_cells_per_rank && e->cells_per_rank_max < b
			      ? e->cells_per_rank_max : b;

		if ((rc = alloc_part(s, "InternalEnergy", SM_DTYPE_F32, b, tc, SM_STAGE_STREAM_CELLS)) != 0 ||
		    (rc = alloc_part(s, "ElectronAbundance", SM_DTYPE_F32, b, tc,
					SM_STAGE_STREAM_CELLS)) != 0 ||
		    (rc = alloc_part(s, "StarFormationRate", SM_DTYPE_F32, b, tc,
					SM_STAGE_STREAM_CELLS)) != 0 ||
		    (rc = alloc_part(s, "temperature", SM_DTYPE_F32, b, tc, SM_STAGE_STREAM_CELLS)) != 0 ||
		    (rc = alloc_part(s, "Coordinates", pt, 3 * b, 3 * tc, SM_STAGE_STREAM_CELLS)) != 0)
			return rc;
		if (pt == SM_DTYPE_F32 &&
		    (rc = alloc(s, "io_buffer", SM_DTYPE_U8, SM_MODEL_IO_BUFFER_BYTES, SM_STAGE_STREAM_CELLS)) != 0)
			return rc;
		release(s, "InternalEnergy");
		release(s, "ElectronAbundance");
		release(s, "StarFormationRate");
		release(s, "temperature");
		release(s, "Coordinates");
		release(s, "io_buffer");
	}
	stage_end(s);

	/* The sums are reduced to rank 0 in place (MPI's buffers are untracked), then freed. */
	stage_begin(s, e, SM_STAGE_HISTOGRAM_WRITE, 0, -1);
	release(s, "profile_sums");
	release(s, "halo_grid_start");
	release(s, "halo_grid_halos");
	stage_end(s);
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
	int rc = 0, mpi;
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
	mpi = o->mpi || o->ranks > 1;  /* as sm_model_options_check has it */
	if (mpi && (o->select != SM_SELECT_INDEX || o->temperature != SM_TEMP_IN_MEMORY))
		return sm_error_set(err, SM_EINVAL, "estimator: --mpi always streams through the halo "
				    "index: --select mask and --temperature streaming do not apply");
	e->options = *o;
	e->options.mpi = mpi;
	e->mpi = mpi;
	e->files_with_gas = -1;

	n_total = in->header.npart_total[0];
	n = n_total;
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
	if (mpi) {
		/* Sphere cells do not enter a rank's memory: shown when they can be modelled. */
		sm_error quiet = {0};

		if (sphere_cells(in, o, n, e, &quiet) != 0) {
			memset(e->halo_sphere_cells, 0, (k > 0 ? k : 1) * sizeof(uint64_t));
			e->sphere_cells_source = "model";
		}
		if ((rc = mpi_split(in, o->ranks, e, err)) != 0)
			goto fail;
	} else if ((rc = sphere_cells(in, o, n, e, err)) != 0) {
		goto fail;
	}
	for (i = 0; i < k; i++) {
		if (inst < 0 || e->halo_sphere_cells[i] > largest) {
			largest = e->halo_sphere_cells[i];
			inst = (int64_t)i;
		}
	}

	/* load_halos: the distributed run holds one catalogue chunk's columns at a time */
	if (mpi && (rc = groups_chunk(in, &g, err)) != 0)
		goto fail;
	stage_begin(&s, e, SM_STAGE_LOAD_HALOS, 0, -1);
	if ((rc = alloc(&s, "Group_M_Crit200", SM_DTYPE_F32, g, SM_STAGE_LOAD_HALOS)) != 0 ||
	    (rc = alloc(&s, "Group_R_Crit200", SM_DTYPE_F32, g, SM_STAGE_LOAD_HALOS)) != 0 ||
	    (g > UINT64_MAX / 3 ? (rc = overflow(&s, "GroupPos", g, SM_DTYPE_F32)) != 0
				: (rc = alloc(&s, "GroupPos", SM_DTYPE_F32, 3 * g, SM_STAGE_LOAD_HALOS)) != 0) ||
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

	if (mpi) {
		if ((rc = mpi_stages(&s, in, o, e)) != 0)
			goto fail;
		for (i = 0; i < k; i++)  /* every halo's sums are live while the cells stream */
			e->halo_peak[i] = e->stages[e->nstages - 2].peak;
		goto totals;
	}

	/* load_gas_fields */
	stage_begin(&s, e, SM_STAGE_LOAD_GAS_FIELDS, 0, -1);
	if (o->temperature == SM_TEMP_IN_MEMORY) {
		if ((rc = alloc(&s, "InternalEnergy", SM_DTYPE_F32, n, SM_STAGE_COMPUTE_TEMPERATURE)) != 0 ||
		    (rc = alloc(&s, "ElectronAbundance", SM_DTYPE_F32, n, SM_STAGE_COMPUTE_TEMPERATURE)) != 0 ||
		    (rc = alloc(&s, "StarFormationRate", SM_DTYPE_F32, n, SM_STAGE_COMPUTE_TEMPERATURE)) != 0)
			goto fail;
	}
	stage_end(&s);

	/* compute_temperature */
	stage_begin(&s, e, SM_STAGE_COMPUTE_TEMPERATURE, 0, -1);
	if ((rc = alloc(&s, "temperature", SM_DTYPE_F32, n, NULL)) != 0)
		goto fail;
	if (o->temperature == SM_TEMP_STREAMING) {
		if ((rc = alloc(&s, "InternalEnergy", SM_DTYPE_F32, b, SM_STAGE_COMPUTE_TEMPERATURE)) != 0 ||
		    (rc = alloc(&s, "ElectronAbundance", SM_DTYPE_F32, b, SM_STAGE_COMPUTE_TEMPERATURE)) != 0 ||
		    (rc = alloc(&s, "StarFormationRate", SM_DTYPE_F32, b, SM_STAGE_COMPUTE_TEMPERATURE)) != 0)
			goto fail;
	}
	release(&s, "InternalEnergy");
	release(&s, "ElectronAbundance");
	release(&s, "StarFormationRate");
	stage_end(&s);

	/* load_positions */
	stage_begin(&s, e, SM_STAGE_LOAD_POSITIONS, 0, -1);
	if (n > UINT64_MAX / 3) {
		rc = overflow(&s, "Coordinates", n, pt);
		goto fail;
	}
	if ((rc = alloc(&s, "Coordinates", pt, 3 * n, NULL)) != 0)
		goto fail;
	if (pt == SM_DTYPE_F32) {
		if ((rc = alloc(&s, "io_buffer", SM_DTYPE_U8, SM_MODEL_IO_BUFFER_BYTES, SM_STAGE_LOAD_POSITIONS)) != 0)
			goto fail;
		release(&s, "io_buffer");
	}
	stage_end(&s);

	/* build_index */
	if (o->select == SM_SELECT_INDEX) {
		grid = sm_model_grid_side(n);
		m = grid * grid * grid;
		stage_begin(&s, e, SM_STAGE_BUILD_INDEX, 0, -1);
		if ((rc = alloc(&s, "index_cell_start", SM_DTYPE_U64, m + 1, NULL)) != 0 ||
		    (rc = alloc(&s, "index_cell_fill", SM_DTYPE_U64, m, SM_STAGE_BUILD_INDEX)) != 0)
			goto fail;
		release(&s, "index_cell_fill");
		stage_end(&s);
	}
	base_live = s.req;

	/* Per-halo stages, for the largest sphere. */
	stage_begin(&s, e, SM_STAGE_SELECT_SPHERE, 1, inst);
	if (inst >= 0) {
		if (o->select == SM_SELECT_INDEX)
			rc = alloc(&s, "sphere_cells", it, largest, SM_STAGE_HISTOGRAM_WRITE);
		else
			rc = alloc(&s, "sphere_mask", SM_DTYPE_U8, n, SM_STAGE_HISTOGRAM_WRITE);
		if (rc != 0)
			goto fail;
	}
	stage_end(&s);
	stage_begin(&s, e, SM_STAGE_RADIAL_DISTANCE, 1, inst);
	if (inst >= 0 && (rc = alloc(&s, "radius", pt, largest, SM_STAGE_HISTOGRAM_WRITE)) != 0)
		goto fail;
	stage_end(&s);
	stage_begin(&s, e, SM_STAGE_MASK_ARRAYS, 1, inst);
	if (inst >= 0) {
		if (largest > UINT64_MAX / 3) {
			rc = overflow(&s, "selected_positions", largest, pt);
			goto fail;
		}
		if ((rc = alloc(&s, "selected_temperature", SM_DTYPE_F32, largest,
				SM_STAGE_HISTOGRAM_WRITE)) != 0 ||
		    (rc = alloc(&s, "selected_positions", pt, 3 * largest, SM_STAGE_HISTOGRAM_WRITE)) != 0)
			goto fail;
	}
	stage_end(&s);
	stage_begin(&s, e, SM_STAGE_HISTOGRAM_WRITE, 1, inst);
	if (inst >= 0 && (rc = alloc(&s, "histogram", SM_DTYPE_U8, SM_MODEL_HISTOGRAM_BYTES,
				     SM_STAGE_HISTOGRAM_WRITE)) != 0)
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

totals:
	for (si = 0; si < e->nstages; si++) {
		if (e->stages[si].peak > e->peak) {
			e->peak = e->stages[si].peak;
			e->peak_stage = si;
		}
		if (e->stages[si].peak_allocated > e->peak_allocated)
			e->peak_allocated = e->stages[si].peak_allocated;
		if (e->stages[si].peak_resident > e->peak_resident_tracked) {
			e->peak_resident_tracked = e->stages[si].peak_resident;
			e->peak_resident_stage = si;
		}
	}
	e->baseline = mpi ? SM_EST_BASELINE_MPI_BYTES : SM_EST_BASELINE_BYTES;
	e->baseline_resident = mpi ? baseline_resident_mpi(o->ranks)
				   : SM_EST_BASELINE_RESIDENT_BYTES;
	e->baseline_address_space = mpi ? baseline_address_mpi(o->ranks)
					: SM_EST_BASELINE_ADDRESS_BYTES;
	{
		/* one process: every array's size classes stay mapped (retained); a rank: its peak */
		uint64_t arrays = mpi ? e->peak_allocated
				      : (s.cum_alloc / 1000 > UINT64_MAX / ADDRESS_PER_ALLOCATED_X1000
					 ? UINT64_MAX
					 : s.cum_alloc / 1000 * ADDRESS_PER_ALLOCATED_X1000);

		if (sm_add_u64(arrays, e->baseline_address_space, &e->peak_address_space) != 0)
			e->peak_address_space = UINT64_MAX;
	}
	if (sm_add_u64(e->peak_resident_tracked, e->baseline_resident, &e->peak_resident) != 0) {
		rc = sm_error_set(err, SM_EOVERFLOW, "'%s': resident peak with the baseline does not "
				  "fit in 64 bits", in->source_name);
		goto fail;
	}
	e->page_tables = (e->peak_resident + PTE_RATIO - 1) / PTE_RATIO;
	e->need = e->peak_resident + e->page_tables;
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
