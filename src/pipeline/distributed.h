/*
 * The distributed run's state (src/pipeline/ only; docs/MPI.md): one rank's share of the run and
 * the collectives, shared by its driver (distributed.c) and its stages, each in the file of its
 * stage id: load_halos (load_halos.c, sm__pl_load_halos_chunked, on struct run alone),
 * build_index (build_index_halos.c, the halo index), stream_cells (stream_cells.c) and
 * histogram_write (histogram_write.c, the reduction and rank 0's rows).
 */
#ifndef SNAPMEM_PIPELINE_DISTRIBUTED_H
#define SNAPMEM_PIPELINE_DISTRIBUTED_H

#include <stdint.h>

#include "run.h"

struct dist {
	struct run *R;
	const sm_pipeline_comm *comm;
	int rank, size;
	sm_error e;               /* this run's error (R->err points here) */

	int32_t *owner;           /* [nfiles] chunk owners (untracked, before the stages) */
	uint64_t *first;          /* [nfiles] global index of each chunk's first gas cell */
	uint64_t my_cells;
	uint64_t my_largest;      /* gas cells of the rank's largest chunk file */

	uint64_t hg, hg3;         /* halo grid side, cells */
	double inv_w;             /* hg / box */
	uint32_t *hg_start;       /* tracked: halo_grid_start [hg^3 + 1] */
	uint32_t *hg_halos;       /* tracked: halo_grid_halos [K min(8, hg^3)] */
	uint32_t hg_lmax;         /* the most halos a halo-grid cell lists (build_index) */
	unsigned char *sums;      /* tracked: profile_sums [25,200 K] */
	uint64_t b;               /* block cells */
};

/* An agreement point: every rank's rc in, the lowest failing rank's code (and, on every rank,
 * its error) out. With one rank it is rc (distributed.c). */
int sm__pl_agree(struct dist *D, int rc);

/* The root attributes of the distributed run's profiles.hdf5, its temporary file created (rank 0;
 * distributed.c). */
int sm__pl_dist_create_output(struct dist *D);

/* Stage build_index: the halo index, a CSR over the hg^3 halo grid (build_index_halos.c). */
int sm__pl_build_halo_index(struct dist *D);

/* Stage stream_cells: this rank's chunk files, block by block, into the halos' sums
 * (stream_cells.c). */
int sm__pl_stream_cells(struct dist *D);

/* Tests only: when r > 0, the one-pass read of range r - 1 of every block fails after reading it,
 * as a failed read would (the block then goes to the field-by-field reads). 0 in a run. */
extern unsigned sm__pl_fail_read_range;

/* Stage histogram_write: rank 0's output created, the agreement before the reduction, the sums
 * added over ranks, rank 0's rows; then the sums and the halo index freed (histogram_write.c). */
int sm__pl_histogram_write_reduced(struct dist *D);

/* Halo-grid cells of cells [0, n) of float32 or float64 positions into gc (build_index_halos.c's
 * grid_cells: wrapped into [0, box), times hg / box, truncated, at most hg - 1), four cells at a
 * time where the CPU has AVX2 and sm__pl_grid_avx2 (1, the default; 0 is the tests' switch to
 * the one-at-a-time loop). */
void sm__pl_grid_cells(const void *x, int f64, uint32_t *gc, uint64_t n, double box, double inv_w,
		       uint32_t hg);
extern int sm__pl_grid_avx2;

#endif
