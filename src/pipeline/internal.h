/*
 * Shared-internal pieces of the pipeline (src/pipeline/ only): the profiles.hdf5 writer and the
 * worker threads. Nothing here is public API; names carry the sm__pl_ prefix.
 */
#ifndef SNAPMEM_PIPELINE_INTERNAL_H
#define SNAPMEM_PIPELINE_INTERNAL_H

#include <stdint.h>

#include "snapmem/error.h"
#include "snapmem/pipeline.h"

#include "common/parallel.h"

/* An open profiles.hdf5 being written under its temporary name. */
typedef struct sm__pl_out sm__pl_out;

/* One root attribute: a string (s != NULL) or a number. */
typedef struct sm__pl_attr {
	const char *name;
	const char *s;
	double d;
	int is_int;
	int64_t i;
} sm__pl_attr;

/*
 * Creates DIR/profiles.hdf5's temporary file with the extendible datasets sized to the run's
 * `rows` halos, the edges and the root attributes; sync_later: sm_outfile.sync_later. 0 or SM_EIO / SM_ENOMEM with err naming the
 * file.
 */
int sm__pl_out_create(sm__pl_out **out, const char *dir, uint64_t rows, int sync_later,
		      const sm__pl_attr *attrs, size_t nattrs, sm_error *err);

/* Appends the next halo's row (at most `rows` of them); hist is the 25,200-byte histogram (counts,
 * sf_counts, mean_temperature, hist2d). hist2d's row goes to the file now, the other datasets'
 * when their chunk is full or holds the last row (or at the commit). 0 or SM_EIO. */
int sm__pl_out_append(sm__pl_out *o, int64_t group_index, const double center[3], double r200,
		      double m200, const void *hist, sm_error *err);

/* Writes the next n halos' rows: group_index[n], center[3n], r200[n], m200[n], and n histograms
 * laid out as sm__pl_out_append's, back to back in hists; chunk by chunk (H5Dwrite_chunk), or
 * one H5Dwrite a dataset where the machine's int64 and double are not the file's. 0 or SM_EIO. */
int sm__pl_out_append_rows(sm__pl_out *o, uint64_t n, const int64_t *group_index,
			   const double *center, const double *r200, const double *m200,
			   const void *hists, sm_error *err);

/* Closes and renames to DIR/profiles.hdf5; path receives the final name. 0 or SM_EIO (nothing
 * left behind). */
int sm__pl_out_commit(sm__pl_out *o, char *path, size_t len, sm_error *err);

/* Closes and removes the temporary file. Accepts NULL. */
void sm__pl_out_abort(sm__pl_out *o);

/* ---- worker threads (src/common/parallel.c, shared with the snapshot reader) ---- */

#define SM__PL_MAX_THREADS SM__MAX_THREADS
typedef sm__part_fn sm__pl_part_fn;
#define sm__pl_threads sm__threads
#define sm__pl_parallel sm__parallel

#endif
