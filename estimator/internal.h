/*
 * Shared-internal pieces of the estimator (the files of estimator/ only): the cosmology and halo model used to
 * predict sphere cell counts, the embedded TNG300-1 facts, calibration from an earlier run, and the
 * atomic file writer. Nothing here is public API; names carry the sm__est_ prefix.
 */
#ifndef SNAPMEM_ESTIMATOR_INTERNAL_H
#define SNAPMEM_ESTIMATOR_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "snapmem/estimator.h"

/* Element size of a model dtype (0 for NONE); the estimator's own table keeps the model pure. */
uint64_t sm__est_dtype_size(sm_dtype t);
const char *sm__est_dtype_name(sm_dtype t);

/* Mean gas-cell mass in code mass units (MassTable[0] when non-zero). 0 when unknown. */
double sm__est_mean_cell_mass(const sm_header *h);

/* R200c in code length units (comoving) of a halo of m200_msun, from the header's cosmology. */
double sm__est_r200(const sm_header *h, double m200_msun);

/* Modelled cells within 2 R200 of one halo (r200 0: computed from the mass), at least 1,
 * at most N. 0 when the mass is unknown. */
uint64_t sm__est_model_sphere_cells(const sm_header *h, double m200_msun, double r200);

/*
 * The halo mass-function shape used when halo masses are not known (embedded TNG300-1, or no group
 * catalogue): a power law N(>M) = 281 (M / 1e14 Msun)^-a through the 280 TNG300-1 halos above
 * 1e14 Msun, with the largest at SM__EST_HMF_MMAX_MSUN_H / h. Instance i (0 = most massive) gets
 * M_i = 1e14 (281 / (i + 1))^(1/a) Msun; sm__est_hmf_count is how many lie strictly above mass_min.
 */
double sm__est_hmf_mass(uint64_t i, double h);
uint64_t sm__est_hmf_count(double mass_min, double h);

/* Appends the model's assumption sentences (static strings) for this input/options. */
size_t sm__est_assumptions(const sm_est_input *in, const sm_model_options *o, const sm_estimate *e,
			   const char **out, size_t max);

/* Reads RUNDIR/memory.json run.halos[].sphere_cells into in->halos (by instance). 0 or SM_E*. */
int sm__est_calibrate(sm_est_input *in, const char *rundir, sm_error *err);

/* Fills in->halos with the model halos selected by o (mass-function shape; group index unknown):
 * o->halos of them, or those above o->mass_min; capped at groups_total when that is known. */
int sm__est_model_halos(sm_est_input *in, const sm_model_options *o, sm_error *err);

/* Writes len bytes to path through the shared writer (sm_out_write, include/snapmem/outfile.h); on
 * failure nothing is left behind and an existing file is untouched. 0 or SM_E*. */
int sm__est_write_atomic(const char *path, const char *text, size_t len, sm_error *err);

/* The TNG300-1 largest halo mass assumed by the mass-function shape (Msun/h). */
#define SM__EST_HMF_MMAX_MSUN_H 1.5e15
/* Catalogue chunk files of TNG300-1's groups_099: with the embedded header, Gc (the largest
 * chunk's Ngroups_ThisFile, which the distributed run's load_halos holds) is modelled as
 * ceil(Ngroups_Total / SM__EST_TNG300_GROUP_FILES). */
#define SM__EST_TNG300_GROUP_FILES 600u
/* NFW concentration assumed for every halo. */
#define SM__EST_NFW_C 4.0

/* The modelled (or calibrated, or overridden) cells within 2 R200 of every halo into
 * e->halo_sphere_cells (at most ncells each) and e->sphere_cells_source. 0 or SM_EINVAL (a halo
 * whose sphere cannot be modelled). */
int sm__est_sphere_cells(const sm_est_input *in, const sm_model_options *o, uint64_t ncells,
			 sm_estimate *e, sm_error *err);
/* e->files, e->files_with_gas and, when the chunk sizes are known, the cells of the most and least
 * loaded of ranks (the distributed run's work split). 0 or SM_E*. */
int sm__est_mpi_split(const sm_est_input *in, uint32_t ranks, sm_estimate *e, sm_error *err);
/* Gc: the groups of the largest catalogue chunk (ceil(G / 600) for the embedded TNG300-1, G when
 * the chunks were not read). 0 or SM_EINVAL. */
int sm__est_groups_chunk(const sm_est_input *in, uint64_t *gc, sm_error *err);

/* Page tables of a resident size: one 8-byte entry per 4 KiB page, 1/512 of it. */
#define SM__EST_PTE_RATIO UINT64_C(512)

/* The "options" and "source" objects of estimate.json, shared with the trade-off document. */
json_t *sm__est_options_json(const sm_model_options *o);
json_t *sm__est_source_json(const sm_est_input *in);
/* The "pipeline" object of a description other than the embedded radial-profiles: its id, title,
 * file and the values of its options not set by a model switch (the default or --set). */
json_t *sm__est_pipeline_json(const sm_model_options *o);
/* The verdict object of estimate.json, also in the trade-off document. */
json_t *sm__est_verdict_json(const sm_est_verdict *v);

#endif
