/*
 * The distributed radial-profile pipeline (docs/MPI.md; include/snapmem/pipeline.h): R ranks, each
 * streaming its share of the snapshot's chunk files, block by block, past a halo index, adding
 * every cell within 2 R200 of a halo into that halo's sums; the sums are added over ranks to rank
 * 0, which alone writes profiles.hdf5. Collectives go through the caller's sm_pipeline_comm (the
 * library never links MPI); with no comm the run is one rank.
 *
 * Memory: exactly docs/MPI.md's arrays, names, sizes, order and lifetimes (the estimator replays
 * them; any change here changes docs/MPI.md and estimator/pipelines/radial-profiles.yaml with it).
 * This file is the
 * driver (the work split, the agreement points, the output's attributes); each stage is in the
 * file of its stage id: load_halos.c (sm__pl_load_halos_chunked), build_index_halos.c,
 * stream_cells.c, histogram_write.c (the reduction). Every rank allocates
 * the same arrays whatever its share. load_halos reads the group catalogue one chunk file at a
 * time into arrays of the largest chunk's size, so that no rank ever holds the whole catalogue
 * (the serial run's sm__pl_load_halos does); its selection is the serial run's, halo for halo.
 * The only untracked allocations are the caller's result table and the chunk assignment (4 + 8
 * bytes per chunk file, made before the first stage).
 *
 * Science: the serial run's kernels from run.h, applied identically (sm__pl_temperature_block,
 * sm__pl_dist_f32/f64 with the same float centre, box and radius, sm__pl_hist_add), so counts,
 * sf_counts and hist2d equal sm_pipeline_run's bit for bit; a halo's temperature sums are added in
 * this rank's file and cell order, then over ranks, so means agree to rounding.
 *
 * Failures: every step runs only while this rank is fine; at each agreement point (after
 * load_halos, after build_index, after stream_cells, before the reduction, after the write) all
 * ranks learn the lowest failing rank and take its error (broadcast from it), so no rank is left
 * waiting in a collective and all return the same code. Before the first collective only checks
 * that come out the same on every rank (the options) may return early.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapmem/pipeline.h"
#include "snapmem/units.h"

#include "distributed.h"
#include "internal.h"
#include "run.h"

/* ---- the work split ---------------------------------------------------------------------------- */

int sm_pipeline_rank_files(const char *base_path, int snap, uint32_t rank, uint32_t ranks,
			   int64_t **files, size_t *nfiles, uint64_t *cells, sm_error *err)
{
	sm_snapshot s;
	uint64_t *cnt = NULL;
	int32_t *owner = NULL;
	int64_t f;
	size_t n = 0;
	int rc;

	*files = NULL;
	*nfiles = 0;
	*cells = 0;
	memset(&s, 0, sizeof(s));
	if (rank >= ranks)
		return sm_error_set(err, SM_EINVAL, "rank %u of %u: no such rank", (unsigned)rank,
				    (unsigned)ranks);
	sm_hdf5_quiet();
	if ((rc = sm_snapshot_open_base(&s, base_path, snap, err)) != 0)
		return rc;
	if ((rc = sm_snapshot_scan(&s, err)) != 0)
		goto out;
	cnt = malloc((size_t)(s.nfiles > 0 ? s.nfiles : 1) * sizeof(*cnt));
	owner = malloc((size_t)(s.nfiles > 0 ? s.nfiles : 1) * sizeof(*owner));
	*files = malloc((size_t)(s.nfiles > 0 ? s.nfiles : 1) * sizeof(**files));
	if (cnt == NULL || owner == NULL || *files == NULL) {
		rc = sm_error_set(err, SM_ENOMEM, "'%s': cannot allocate the chunk assignment",
				  base_path);
		goto out;
	}
	for (f = 0; f < s.nfiles; f++)
		cnt[f] = s.chunk_counts[f * SM_NTYPES + 0];
	if ((rc = sm_model_assign_chunks(cnt, (size_t)s.nfiles, ranks, NULL, owner, err)) != 0)
		goto out;
	for (f = 0; f < s.nfiles; f++) {
		if (owner[f] != (int32_t)rank)
			continue;
		(*files)[n++] = f;
		*cells += cnt[f];
	}
	*nfiles = n;
out:
	if (rc != 0 || n == 0) {
		free(*files);
		*files = NULL;
	}
	free(cnt);
	free(owner);
	sm_snapshot_release(&s);
	return rc;
}

/* ---- the run ------------------------------------------------------------------------------------ */


/* An agreement point: every rank's rc in, the lowest failing rank's code (and, on every rank,
 * its error) out. With one rank it is rc. */
int sm__pl_agree(struct dist *D, int rc)
{
	int frank = -1, fcode = 0, crc;

	if (D->comm == NULL || D->size == 1)
		return rc;
	if (rc != 0 && D->e.code == 0)
		sm_error_set(&D->e, rc, "%s", sm_strerror(rc));
	if (rc != 0) {
		char msg[SM_ERROR_MSG_MAX];

		snprintf(msg, sizeof(msg), "rank %d of %d: %.700s", D->rank, D->size, D->e.msg);
		memcpy(D->e.msg, msg, sizeof(msg));
	}
	crc = D->comm->agree(D->comm->ctx, rc, &frank, &fcode);
	if (crc != 0)
		return sm_error_set(&D->e, crc, "rank %d of %d: agreement failed: %s", D->rank,
				    D->size, sm_strerror(crc));
	if (frank < 0 || fcode == 0)
		return 0;
	crc = D->comm->bcast(D->comm->ctx, frank, &D->e, sizeof(D->e));
	if (crc != 0)
		return sm_error_set(&D->e, crc, "rank %d of %d: cannot receive rank %d's error: %s",
				    D->rank, D->size, frank, sm_strerror(crc));
	D->e.code = fcode;
	return fcode;
}

/* Before the first stage (untracked, 12 bytes per chunk): who streams which chunk. */
static int assign(struct dist *D)
{
	struct run *R = D->R;
	int64_t f, nf = R->s.nfiles;
	uint64_t *cnt, acc = 0;
	int rc;

	D->owner = malloc((size_t)(nf > 0 ? nf : 1) * sizeof(*D->owner));
	D->first = malloc((size_t)(nf > 0 ? nf : 1) * sizeof(*D->first));
	cnt = malloc((size_t)(nf > 0 ? nf : 1) * sizeof(*cnt));
	if (D->owner == NULL || D->first == NULL || cnt == NULL) {
		free(cnt);
		return sm_error_set(R->err, SM_ENOMEM, "'%s': cannot allocate the chunk assignment",
				    sm__pl_snap_file(R));
	}
	for (f = 0; f < nf; f++) {
		cnt[f] = R->s.chunk_counts[f * SM_NTYPES + 0];
		D->first[f] = acc;
		acc += cnt[f];
	}
	rc = sm_model_assign_chunks(cnt, (size_t)nf, (uint32_t)D->size, NULL, D->owner,
				    R->err);
	for (f = 0; rc == 0 && f < nf; f++)
		if (D->owner[f] == D->rank) {
			D->my_cells += cnt[f];
			if (cnt[f] > D->my_largest)
				D->my_largest = cnt[f];
		}
	free(cnt);
	return rc;
}

/* The root attributes of the distributed run's profiles.hdf5. */
int sm__pl_dist_create_output(struct dist *D)
{
	struct run *R = D->R;
	sm__pl_attr a[24];
	size_t n = 0;

	memset(a, 0, sizeof(a));
	sm__pl_attrs_head(R, a, &n);
	a[n].name = "strategy";
	a[n++].s = "distributed: chunk files over ranks, cells streamed past a halo index";
	a[n].name = "mpi";
	a[n].is_int = 1;
	a[n++].i = 1;
	a[n].name = "ranks";
	a[n].is_int = 1;
	a[n++].i = D->size;
	sm__pl_attrs_tail(R, a, &n, 0, "halo_grid_side", D->hg);
	return sm__pl_out_create(&R->out, R->o->out_dir, R->k, R->o->sync_later, a, n,
				 R->err);
}

static int run_stages(struct dist *D)
{
	struct run *R = D->R;
	int rc;

	rc = sm__pl_cancelled(R);
	if (rc == 0)
		rc = sm__pl_open_inputs(R);
	if (rc == 0)
		rc = assign(D);
	if (rc == 0)
		rc = sm__pl_load_halos_chunked(R);
	if ((rc = sm__pl_agree(D, rc)) != 0)
		return rc;
	rc = sm__pl_build_halo_index(D);
	if ((rc = sm__pl_agree(D, rc)) != 0)
		return rc;
	rc = sm__pl_stream_cells(D);
	if (rc == 0)
		rc = sm__pl_cancelled(R);
	if ((rc = sm__pl_agree(D, rc)) != 0)
		return rc;
	/* agree() before the reduction is inside histogram_write; a failure after it (rank 0's
	 * rows) is taken to the agreement after the write. */
	rc = sm__pl_histogram_write_reduced(D);
	if (rc == 0 && D->rank == 0) {
		rc = sm__pl_out_commit(R->out, R->r->profiles_path, sizeof(R->r->profiles_path),
				       R->err);
		R->out = NULL;
	}
	rc = sm__pl_agree(D, rc);
	if (rc != 0 && R->r->profiles_path[0] != '\0') {
		/* Rank 0 wrote the file but the run failed after all: nothing is left. */
		remove(R->r->profiles_path);
		R->r->profiles_path[0] = '\0';
	}
	return rc;
}

int sm_pipeline_run_distributed(const sm_pipeline_options *o, const sm_pipeline_comm *comm,
				sm_prof *p, sm_pipeline_result *r, sm_error *err)
{
	struct run run, *R = &run;
	struct dist dist, *D = &dist;
	int rc;

	memset(r, 0, sizeof(*r));
	r->instance = -1;
	memset(R, 0, sizeof(*R));
	memset(D, 0, sizeof(*D));
	D->R = R;
	D->comm = comm;
	D->rank = comm != NULL ? comm->rank : 0;
	D->size = comm != NULL ? comm->size : 1;
	R->o = o;
	R->p = p;
	R->r = r;
	R->err = &D->e;
	R->t0 = sm__pl_now_s();
	sm_hdf5_quiet();
	/* Checks that come out the same on every rank: no collective yet. */
	if (comm != NULL && (comm->size < 1 || comm->rank < 0 || comm->rank >= comm->size ||
			     comm->sum_i64 == NULL || comm->sum_f64 == NULL ||
			     comm->agree == NULL || comm->bcast == NULL)) {
		rc = sm_error_set(&D->e, SM_EINVAL, "pipeline: the communicator is incomplete "
				  "(rank %d of %d)", comm->rank, comm->size);
		goto out;
	}
	if (o == NULL || o->base_path == NULL || o->out_dir == NULL) {
		rc = sm_error_set(&D->e, SM_EINVAL, "pipeline: base path and output directory needed");
		goto out;
	}
	if (o->model.positions != SM_DTYPE_F32 && o->model.positions != SM_DTYPE_F64) {
		rc = sm_error_set(&D->e, SM_EINVAL, "pipeline: positions must be float32 or float64");
		goto out;
	}
	if (o->model.ranks != (uint32_t)D->size) {
		rc = sm_error_set(&D->e, SM_EINVAL, "--ranks %u: the run has %d rank%s",
				  (unsigned)o->model.ranks, D->size, D->size == 1 ? "" : "s");
		goto out;
	}
	if (o->model.select != SM_SELECT_INDEX) {
		rc = sm_error_set(&D->e, SM_EINVAL, "--select mask: does not apply with --mpi (the "
				  "distributed run finds each cell's halos through a halo index)");
		goto out;
	}
	if (o->model.temperature != SM_TEMP_IN_MEMORY) {
		rc = sm_error_set(&D->e, SM_EINVAL, "--temperature streaming: does not apply with "
				  "--mpi (the distributed run always streams its cells in blocks)");
		goto out;
	}
	if (o->model.stream_block == 0) {
		rc = sm_error_set(&D->e, SM_EINVAL, "--stream-block: must be at least 1 cell");
		goto out;
	}
	R->pt = o->model.positions;
	R->psz = sm_dtype_size(R->pt);
	sm__pl_tbin_table_init(&R->tbins);

	rc = run_stages(D);
	if (rc == 0)
		r->stage[0] = '\0';
out:
	while (R->nlive > 0) {
		void *q = R->live[R->nlive - 1].ptr;

		sm__pl_pfree(R, &q);
	}
	sm__pl_stage_end(R);
	sm__pl_out_abort(R->out);
	if (R->c_open)
		sm_catalog_release(&R->c);
	if (R->s_open)
		sm_snapshot_release(&R->s);
	free(D->owner);
	free(D->first);
	r->wall_s = sm__pl_now_s() - R->t0;
	if (rc != 0 && D->e.code == 0)
		sm_error_set(&D->e, rc, "pipeline: %s", sm_strerror(rc));
	if (err != NULL) {
		if (rc != 0)
			*err = D->e;
		else
			sm_error_clear(err);
	}
	return rc;
}

