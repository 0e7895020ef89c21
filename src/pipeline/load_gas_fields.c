/*
 * Stage load_gas_fields (step 2; docs/MODEL.md): InternalEnergy, ElectronAbundance and
 * StarFormationRate of every gas cell, float32, read whole (--temperature in-memory, the default),
 * each array mapped in on all CPUs before it is filled, the three read chunk file by chunk file.
 * With --temperature streaming the stage is recorded empty: compute_temperature reads the fields
 * block by block. sm__pl_read_gas, the one read of a gas field, is shared with
 * compute_temperature's and stream_cells' blocks.
 */
#include <stdint.h>

#include "run.h"

const char *const sm__pl_gas_names[3] = {SM_ARRAY_INTERNAL_ENERGY, SM_ARRAY_ELECTRON_ABUNDANCE,
					  SM_ARRAY_STAR_FORMATION_RATE};

int sm__pl_read_gas(struct run *R, const char *name, uint64_t first, uint64_t n, float *out)
{
	double t0 = sm__pl_now_s();
	int rc = sm_snapshot_read_range(&R->s, 0, name, SM_DTYPE_F32, 1, first, n, out, NULL,
					R->err);

	sm__pl_part_since(R, SM_PROF_PART_READ, t0);
	return rc;
}

/* The three fields one after the other, each over all chunk files: whose first failure is the
 * stage's error. */
static int read_by_field(struct run *R, float **f[3])
{
	int rc, j;

	for (j = 0; j < 3; j++) {
		if ((rc = sm__pl_cancelled(R)) != 0)
			return rc;
		if ((rc = sm__pl_read_gas(R, sm__pl_gas_names[j], 0, R->n, *f[j])) != 0)
			return rc;
		sm__pl_progress(R, SM_STAGE_LOAD_GAS_FIELDS, -1, (uint64_t)(j + 1) * R->n, 3 * R->n);
	}
	return 0;
}

/*
 * The three fields chunk file by chunk file, so that each file is opened once for all three (a
 * field at a time opened every chunk three times: an HDF5 open and its datasets' checks, ~150 us
 * each, at any number of cells). Should any read fail, the fields are read again one after the
 * other (read_by_field), so that the error is the one that order gives.
 */
static int read_by_chunk(struct run *R, float **f[3])
{
	uint64_t at = 0;
	int64_t c;
	int rc, j;

	for (c = 0; c < R->s.nfiles; c++) {
		uint64_t cnt = R->s.chunk_counts[(size_t)c * SM_NTYPES + 0];

		if (cnt == 0)
			continue;
		if ((rc = sm__pl_cancelled(R)) != 0)
			return rc;
		for (j = 0; j < 3; j++)
			if (sm__pl_read_gas(R, sm__pl_gas_names[j], at, cnt, *f[j] + at) != 0)
				return read_by_field(R, f);
		at += cnt;
		sm__pl_progress(R, SM_STAGE_LOAD_GAS_FIELDS, -1, 3 * at, 3 * R->n);
	}
	return 0;
}

int sm__pl_load_gas_fields(struct run *R)
{
	uint64_t n = R->n;
	float **f[3] = {&R->u, &R->xe, &R->sfr};
	int rc, j;

	if (R->o->model.temperature == SM_TEMP_STREAMING) {
		if ((rc = sm__pl_stage_begin(R, SM_STAGE_LOAD_GAS_FIELDS, -1, 0)) != 0)
			return rc;
		sm__pl_stage_end(R);
		return 0;
	}
	if ((rc = sm__pl_stage_begin(R, SM_STAGE_LOAD_GAS_FIELDS, -1, 3 * n)) != 0)
		return rc;
	for (j = 0; j < 3; j++)
		if ((rc = sm__pl_palloc_filled(R, f[j], sm__pl_gas_names[j], 4 * n)) != 0)
			return rc;
	if (n > 0 && (rc = read_by_chunk(R, f)) != 0)
		return rc;
	sm__pl_stage_end(R);
	return 0;
}
