/*
 * The estimator's model: a pure function from header facts, the selected halos and the model options
 * to a pipeline's stages, array by array. What the pipeline allocates and frees is no longer here:
 * it is a pipeline description (docs/PIPELINES.md; the radial-profile pipeline of docs/MODEL.md is
 * estimator/pipelines/radial-profiles.yaml, compiled in) replayed by interp.c on a small simulated
 * heap. This file keeps what the descriptions read: the sphere-cell mass model (the gas cells
 * within 2 R200 of every halo), the distributed run's work split (chunk files to ranks, largest
 * first to the least-loaded rank) and catalogue chunk size, and the totals (the four peaks, the
 * page tables, the need every verdict judges).
 *
 * Every byte count is overflow-checked: a count whose bytes do not fit 64 bits is SM_EOVERFLOW, one
 * line naming the source and the array. Allocated bytes are jemalloc's size class of each request
 * (sm_prof_nallocx), never computed here.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "snapmem/estimator.h"
#include "snapmem/model.h"
#include "snapmem/profiler.h"
#include "snapmem/units.h"

#include "describe.h"
#include "internal.h"

/*
 * The least address space a run can do with: what the run's limit check (`snapmem run`, RLIMIT_AS
 * and RLIMIT_DATA) compares with the limit, so that it never refuses a run that fits. Under a limit
 * jemalloc's geometric growth of its mappings fails over to maps of the size asked for, so a run
 * completes below its unlimited VmPeak. The least `ulimit -v` under which a run completed (1 MiB
 * steps, SNAPMEM_LIMIT_CHECK=0), over its pre-run peak_address_space: 200,000 cells 0.93 (55 MiB),
 * 1e6 float32 index 1.04 (94 MiB), 1e6 float64 mask 0.99 (106 MiB), 3e6 float64 mask 0.91
 * (214 MiB), 1e7 float32 index 0.94 (440 MiB), 1e7 float64 mask 0.88 (575 MiB). The check takes
 * 0.85 of the prediction, and never less than the baseline's address space (below it HDF5 1.10
 * crashes in H5Fopen or misreads for want of memory: docs/PIPELINE.md "Memory limits").
 */
#define ADDRESS_LEAST_X1000 UINT64_C(850)

/* jemalloc's smallest large size class with 4 KiB pages: requests from it up get whole pages of
 * their own (page-aligned extents); smaller ones share slabs and are counted at their size class. */
#define LARGE_MIN_BYTES UINT64_C(16384)
#define PAGE_BYTES UINT64_C(4096)

uint64_t sm__est_dtype_size(sm_dtype t)
{
	return sm_dtype_size(t);
}

const char *sm__est_dtype_name(sm_dtype t)
{
	return sm_dtype_name(t);
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
	size_t n = 0, i;
	const char *src = e->sphere_cells_source != NULL ? e->sphere_cells_source : "model";
	unsigned rd = sm_est_reads(e);

#define ADD(s) do { if (n < max) out[n++] = (s); } while (0)
	/* a description that reads no halo (no halo quantity, no per-halo loop): not the halo model's */
	if (!(rd & SM_EST_READS_HALOS))
		goto halos_done;
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
halos_done:
	if (in != NULL && strcmp(in->source_kind, "embedded") == 0 &&
	    (rd & (SM_EST_READS_HALOS | SM_EST_READS_GROUPS)))
		ADD("Ngroups_Total = 17,625,892 for TNG300-1 snapshot 99, from the TNG public data "
		    "release");
	/* the catalogue chunk read by the description: its size is modelled for the embedded header */
	if ((e->quantities_used & (UINT64_C(1) << SM__Q_GROUPS_CHUNK_MAX)) && in != NULL &&
	    strcmp(in->source_kind, "embedded") == 0 && in->groups_chunk_max == 0)
		ADD("load_halos per rank reads the catalogue one chunk file at a time: the largest "
		    "chunk's Ngroups_ThisFile (Gc) is not in the embedded header and is taken as "
		    "ceil(Ngroups_Total / 600) = 29,377 groups (TNG300-1 groups_099 has 600 chunk "
		    "files; a real chunk may hold more)");
	if ((e->quantities_used & ((UINT64_C(1) << SM__Q_GAS_CHUNK_MAX) |
				   (UINT64_C(1) << SM__Q_DM_CHUNK_MAX))) && in != NULL &&
	    in->chunk_gas == NULL)
		ADD("the largest snapshot chunk's particles (gas_chunk_max, dm_chunk_max) are not read "
		    "from this source: taken as ceil(particles / files), an even spread (a real chunk "
		    "may hold more)");
	/* then the description's own sentences (estimator/pipelines/radial-profiles.yaml) */
	for (i = 0; i < e->ndesc_assumptions; i++)
		ADD(e->desc_assumptions[i]);
#undef ADD
	return n;
}

/* ---- sphere cells per halo ------------------------------------------------------------------- */

int sm__est_sphere_cells(const sm_est_input *in, const sm_model_options *o, uint64_t ncells,
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
	free(e->rank_peak_resident);
	e->halo_sphere_cells = NULL;
	e->halo_peak = NULL;
	e->rank_peak_resident = NULL;
	e->nhalos = 0;
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
int sm__est_mpi_split(const sm_est_input *in, uint32_t ranks, sm_estimate *e, sm_error *err)
{
	uint64_t *load, mx = 0, mn = UINT64_MAX;
	int32_t *owner;
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
	owner = malloc((size_t)in->nchunks * sizeof(*owner));
	/* each rank's largest chunk file, turned into its resident peak after the replay */
	e->rank_peak_resident = calloc(ranks, sizeof(*e->rank_peak_resident));
	if (load == NULL || owner == NULL || e->rank_peak_resident == NULL) {
		rc = sm_error_set(err, SM_ENOMEM, "estimator: cannot hold the cells of %u ranks",
				  ranks);
		goto out;
	}
	rc = sm_model_assign_chunks(in->chunk_gas, (size_t)in->nchunks, ranks, load, owner, err);
	if (rc == 0) {
		for (r = 0; r < ranks; r++) {
			if (load[r] > mx)
				mx = load[r];
			if (load[r] < mn)
				mn = load[r];
		}
		for (i = 0; i < in->nchunks; i++) {
			if (owner[i] < 0)
				continue;
			if (in->chunk_gas[i] > e->rank_peak_resident[owner[i]])
				e->rank_peak_resident[owner[i]] = in->chunk_gas[i];
			if (in->chunk_gas[i] > e->cells_per_file_max)
				e->cells_per_file_max = in->chunk_gas[i];
		}
		e->have_cells_per_rank = 1;
		e->cells_per_rank_max = mx;
		e->cells_per_rank_min = mn;
	}
out:
	free(owner);
	free(load);
	return rc;
}

/* Gc: the groups of the largest catalogue chunk, whose three columns the distributed run's
 * load_halos holds (docs/MPI.md). Read from the chunk headers when the source has a catalogue;
 * else ceil(G / 600) for the embedded TNG300-1 header (groups_099: 600 chunk files), G otherwise
 * (one chunk: never less than the run holds). */
int sm__est_groups_chunk(const sm_est_input *in, uint64_t *gc, sm_error *err)
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

/* The tracked arrays' resident peak of a replayed estimate plus its resident baseline. */
static uint64_t resident_of(const sm_estimate *e)
{
	uint64_t p = 0, v;
	size_t si;

	for (si = 0; si < e->nstages; si++)
		if (e->stages[si].peak_resident > p)
			p = e->stages[si].peak_resident;
	return sm_add_u64(p, e->baseline_resident, &v) != 0 ? UINT64_MAX : v;
}

/*
 * Every rank's resident peak (a distributed run whose chunk sizes are known; e->rank_peak_resident
 * holds each rank's largest chunk file on entry): the description replayed with that file as the
 * largest chunk (gas_chunk_max), since a rank writes each block of a file from the block's start
 * and touches as much of its block as its largest file fills. One replay per distinct file size;
 * the rank holding the largest file is e's own. At 1e6 cells over 3 ranks, counting all the rank's
 * cells instead over-predicted VmHWM by 10-15 % (docs/MODEL.md).
 */
static int rank_resident(const sm_est_input *in, const sm_model_options *o,
			 const sm_pipeline_desc *d, sm_estimate *e, const sm_error *sphere_err,
			 sm_error *err)
{
	sm_estimate *t = NULL;
	sm_est_input in1 = *in;
	uint64_t one = 0, cum = 0, *file = NULL;
	uint32_t r, q;
	int rc = 0;

	if (!e->mpi || e->rank_peak_resident == NULL)
		return 0;
	t = calloc(1, sizeof(*t));
	file = malloc(o->ranks * sizeof(*file));
	if (t == NULL || file == NULL) {
		rc = sm_error_set(err, SM_ENOMEM, "estimator: cannot replay %u ranks", o->ranks);
		goto out;
	}
	memcpy(file, e->rank_peak_resident, o->ranks * sizeof(*file));
	in1.chunk_gas = &one;
	in1.nchunks = 1;
	for (r = 0; r < o->ranks; r++) {
		for (q = 0; q < r && file[q] != file[r]; q++)
			;
		if (q < r) {           /* a rank with the same largest file: the same figure */
			e->rank_peak_resident[r] = e->rank_peak_resident[q];
			continue;
		}
		if (file[r] == e->cells_per_file_max) {
			e->rank_peak_resident[r] = e->peak_resident;
			continue;
		}
		free(t->halo_peak);
		memset(t, 0, sizeof(*t));
		t->options = e->options;
		t->mpi = e->mpi;
		t->files = e->files;
		t->files_with_gas = e->files_with_gas;
		t->have_cells_per_rank = e->have_cells_per_rank;
		t->cells_per_rank_max = e->cells_per_rank_max;
		t->cells_per_rank_min = e->cells_per_rank_min;
		t->nhalos = e->nhalos;
		t->halo_sphere_cells = e->halo_sphere_cells;   /* read only */
		t->sphere_cells_source = e->sphere_cells_source;
		t->halo_peak = calloc(e->nhalos > 0 ? e->nhalos : 1, sizeof(uint64_t));
		if (t->halo_peak == NULL) {
			rc = sm_error_set(err, SM_ENOMEM, "estimator: cannot replay %u ranks", o->ranks);
			goto out;
		}
		one = file[r];
		if ((rc = sm__desc_replay(d, &in1, o, t, sphere_err, &cum, err)) != 0)
			goto out;
		e->rank_peak_resident[r] = resident_of(t);
	}
	/* Ranks 1.. neither compute the estimate nor write the documents: their own baseline, when
	 * the description gives one (rank 0's is every figure's above, the largest). */
	for (r = 1; r < o->ranks && e->baseline_resident_other > 0; r++) {
		uint64_t v = e->rank_peak_resident[r];

		if (v >= e->baseline_resident &&
		    sm_add_u64(v - e->baseline_resident, e->baseline_resident_other, &v) != 0)
			v = UINT64_MAX;
		e->rank_peak_resident[r] = v;
	}
out:
	if (t != NULL)
		free(t->halo_peak);
	free(t);
	free(file);
	return rc;
}

/* The estimate of a pipeline description: the halos' sphere cells and the work split here, the
 * stages by the description's replay (interp.c), the totals here. */
static int compute_desc(const sm_est_input *in, const sm_model_options *o,
			const sm_pipeline_desc *d, sm_estimate *e, sm_error *err)
{
	uint64_t n = in->header.npart_total[0], k = in->nhalos, cum = 0;
	sm_error serr = {0};
	int rc, srcs;
	size_t si;

	e->nhalos = k;
	e->halo_sphere_cells = calloc(k > 0 ? k : 1, sizeof(uint64_t));
	e->halo_peak = calloc(k > 0 ? k : 1, sizeof(uint64_t));
	if (e->halo_sphere_cells == NULL || e->halo_peak == NULL) {
		rc = sm_error_set(err, SM_ENOMEM, "estimator: cannot allocate %llu halo figures",
				  (unsigned long long)k);
		goto fail;
	}
	/* an error of the sphere model is raised only if the description reads the spheres */
	if ((srcs = sm__est_sphere_cells(in, o, n, e, &serr)) != 0) {
		memset(e->halo_sphere_cells, 0, (k > 0 ? k : 1) * sizeof(uint64_t));
		e->sphere_cells_source = "model";
	}
	if ((rc = sm__est_mpi_split(in, o->ranks, e, err)) != 0 ||
	    (rc = sm__desc_replay(d, in, o, e, srcs != 0 ? &serr : NULL, &cum, err)) != 0)
		goto fail;
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
	if (sm_add_u64(e->peak_resident_tracked, e->baseline_resident, &e->peak_resident) != 0) {
		rc = sm_error_set(err, SM_EOVERFLOW, "'%s': resident peak with the baseline does not "
				  "fit in 64 bits", in->source_name);
		goto fail;
	}
	if ((rc = rank_resident(in, o, d, e, srcs != 0 ? &serr : NULL, err)) != 0)
		goto fail;
	e->least_address_space = e->peak_address_space / 1000 * ADDRESS_LEAST_X1000;
	if (e->least_address_space < e->baseline_address_space)
		e->least_address_space = e->baseline_address_space;
	/* page tables: one 8-byte entry per 4 KiB page (huge pages need fewer) */
	e->page_tables = (e->peak_resident + SM__EST_PTE_RATIO - 1) / SM__EST_PTE_RATIO;
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

int sm_estimate_compute(const sm_est_input *in, const sm_model_options *o, sm_estimate *out,
			sm_error *err)
{
	const sm_pipeline_desc *d;
	sm_estimate *e = out;
	int rc, mpi;

	memset(e, 0, sizeof(*e));
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
	d = o->pipeline;
	if (d == NULL && (rc = sm_desc_default(&d, err)) != 0)
		return rc;
	e->options = *o;
	e->options.mpi = mpi;
	e->mpi = mpi;
	e->files_with_gas = -1;
	return compute_desc(in, o, d, e, err);
}
