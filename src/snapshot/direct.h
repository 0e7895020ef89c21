/*
 * Direct reads of a snapshot range on any thread: the snapshot reader's fast path (fastread.c)
 * split so that the caller's worker threads may each read their own slices of a range, without
 * HDF5 (which is not thread-safe) and without allocating. sm__snapshot_direct, on the thread
 * that owns the snapshot, finds the chunk file holding a range and checks that the fast path
 * may read its dataset with the conversion asked for (every precondition of fastread.c, checked,
 * never assumed); sm__fast_read_here then reads any part of it on the calling thread. Whenever
 * a range is not direct, or a direct read fails, the caller reads through sm_snapshot_read_range,
 * which words every error as before. Library-internal (src/snapshot and src/pipeline).
 */
#ifndef SNAPMEM_SNAPSHOT_DIRECT_H
#define SNAPMEM_SNAPSHOT_DIRECT_H

#include <stddef.h>
#include <stdint.h>

#include "snapmem/snapshot.h"
#include "snapmem/units.h"

/* Where a dataset's elements lie in its file, when they may be read directly. */
typedef struct sm__extent {
	int ok;                /* every precondition holds; the rest is valid only then */
	int fd;                /* HDF5's descriptor of the file (sec2 driver) or the metadata
				* reader's (field.c meta_field), not owned */
	uint64_t offset;       /* absolute byte offset of element 0 */
	uint64_t bytes;        /* the dataset's bytes, all inside the file */
	sm_dtype disk;         /* element type */
	int swap;              /* byte order differs from the host's */
} sm__extent;

/* Values a checked read accepts: lo <= v < hi (NaN never). */
typedef struct sm__bounds {
	double lo, hi;
} sm__bounds;

/* A range of rows of one chunk file's dataset that sm__fast_read_here may read. */
typedef struct sm__direct {
	int ok;          /* the rest is valid only then */
	sm__extent x;    /* the chunk's dataset (x.fd: the open chunk file's, kept by the snapshot
			  * until another chunk file is opened or the snapshot is closed) */
	sm_dtype memtype;
	uint64_t e0;     /* the range's first element in the dataset (row x components) */
	uint64_t ne;     /* its elements */
} sm__direct;

/*
 * Rows [first, first + count) of (ptype, field), ncomp components, read as memtype: d->ok = 1
 * when they lie in one chunk file whose dataset the fast path reads with that conversion
 * (bounded: float64 narrowed with a range check allowed as well); otherwise d->ok = 0, never an
 * error (the caller's sm_snapshot_read_range then reads and words it).
 */
void sm__snapshot_direct(sm_snapshot *s, int ptype, const char *field, sm_dtype memtype, int ncomp,
			 uint64_t first, uint64_t count, int bounded, sm__direct *d);

/* 1 when the fast path converts x's elements to memtype exactly as HDF5 would (bounded: for a
 * range-checked read), else 0. */
int sm__fast_converts(const sm__extent *x, sm_dtype memtype, int bounded);

/*
 * sm__fast_read on the calling thread alone: elements [e0, e0 + ne) of the dataset x describes
 * into out as memtype, conversions through scratch (any size from 8 bytes). Same returns: 0
 * done (*bad: the first element outside b, else ne), 1 not a conversion it does, SM_EIO a failed
 * read (*errnum).
 */
int sm__fast_read_here(const sm__extent *x, sm_dtype memtype, uint64_t e0, uint64_t ne, void *out,
		       void *scratch, size_t scratch_bytes, const sm__bounds *b, uint64_t *bad,
		       int *errnum);

#endif
