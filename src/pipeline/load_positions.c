/*
 * Stage load_positions (step 4; docs/MODEL.md): Coordinates of every gas cell in the positions'
 * type, float32 (default: read as float64 through the 1 MiB io_buffer and narrowed in the same
 * pass, sm_snapshot_read_range_checked) or float64, range-checked as read: a non-finite coordinate
 * or one more than half a box outside the box is bad input naming its chunk file and row. The
 * array is mapped in on all CPUs before it is filled (sm__pl_prefault). The distributed run reads
 * its blocks with the same sm__pl_read_positions.
 */
#include <stdint.h>

#include "snapmem/units.h"

#include "run.h"

/* Coordinates are read this many cells a call, so that a signal stops a long read soon. */
#define POSITIONS_PIECE (UINT64_C(16) << 20)

int sm__pl_read_positions(struct run *R, uint64_t first, uint64_t n, void *out, uint64_t *bad)
{
	sm_io_buffer iob = {R->iobuf, R->iobuf != NULL ? SM_MODEL_IO_BUFFER_BYTES : 0};
	uint64_t done, k, b;
	double t0;
	int rc;

	*bad = n;
	for (done = 0; done < n; done += k) {
		k = n - done < POSITIONS_PIECE ? n - done : POSITIONS_PIECE;
		if ((rc = sm__pl_cancelled(R)) != 0)
			return rc;
		t0 = sm__pl_now_s();
		rc = sm_snapshot_read_range_checked(&R->s, 0, SM_ARRAY_COORDINATES, R->pt, 3, first + done,
						    k, (char *)out + done * 3 * R->psz,
						    R->iobuf != NULL ? &iob : NULL, -0.5 * R->box,
						    1.5 * R->box, &b, R->err);
		sm__pl_part_since(R, SM_PROF_PART_READ, t0);
		if (rc != 0)
			return rc;
		if (b < k) {
			*bad = done + b;
			return 0;
		}
	}
	return 0;
}

int sm__pl_bad_coordinate(struct run *R, uint64_t cell)
{
	char where[SM_PATH_MAX];
	uint64_t local;

	sm__pl_cell_location(R, cell, where, sizeof(where), &local);
	return sm_error_set(R->err, SM_EFORMAT,
			    "'%s': /PartType0/Coordinates[%llu] is not finite or lies more than half a "
			    "box (BoxSize %g) outside the box (gas cell %llu)", where,
			    (unsigned long long)local, R->box, (unsigned long long)cell);
}

int sm__pl_load_positions(struct run *R)
{
	uint64_t n = R->n, bytes, bad = n;
	int rc;

	if ((rc = sm__pl_stage_begin(R, SM_STAGE_LOAD_POSITIONS, -1, n)) != 0)
		return rc;
	if (sm_mul_u64(n, 3 * (uint64_t)R->psz, &bytes) != 0)
		return sm_error_set(R->err, SM_EOVERFLOW, "'%s': Coordinates of %llu cells: byte "
				    "count does not fit in 64 bits", sm__pl_snap_file(R),
				    (unsigned long long)n);
	if ((rc = sm__pl_palloc_filled(R, &R->coords, SM_ARRAY_COORDINATES, bytes)) != 0)
		return rc;
	if (R->pt == SM_DTYPE_F32) {
		if ((rc = sm__pl_palloc(R, &R->iobuf, SM_ARRAY_IO_BUFFER,
					SM_MODEL_IO_BUFFER_BYTES)) != 0)
			return rc;
	}
	if ((rc = sm__pl_read_positions(R, 0, n, R->coords, &bad)) != 0)
		return rc;
	if (bad < n)
		return sm__pl_bad_coordinate(R, bad);
	sm__pl_pfree(R, &R->iobuf);
	sm__pl_progress(R, SM_STAGE_LOAD_POSITIONS, -1, n, n);
	sm__pl_stage_end(R);
	return 0;
}
