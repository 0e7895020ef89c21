/*
 * Stage load_gas_fields (step 2; docs/MODEL.md): InternalEnergy, ElectronAbundance and
 * StarFormationRate of every gas cell, float32, read whole (--temperature in-memory, the default),
 * each array mapped in on all CPUs before it is filled. With --temperature streaming the stage is
 * recorded empty: compute_temperature reads the fields block by block. sm__pl_read_gas, the one
 * read of a gas field, is shared with compute_temperature's and stream_cells' blocks.
 */
#include <stdint.h>

#include "run.h"

/* The three fields, in the order they are read and allocated. */
static const char *const gas_names[3] = {SM_ARRAY_INTERNAL_ENERGY, SM_ARRAY_ELECTRON_ABUNDANCE,
					 SM_ARRAY_STAR_FORMATION_RATE};

int sm__pl_read_gas(struct run *R, const char *name, uint64_t first, uint64_t n, float *out)
{
	double t0 = sm__pl_now_s();
	int rc = sm_snapshot_read_range(&R->s, 0, name, SM_DTYPE_F32, 1, first, n, out, NULL,
					R->err);

	sm__pl_part_since(R, SM_PROF_PART_READ, t0);
	return rc;
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
		if ((rc = sm__pl_palloc(R, f[j], gas_names[j], 4 * n)) != 0)
			return rc;
	for (j = 0; j < 3; j++)
		sm__pl_prefault(R, *f[j], 4 * n);
	for (j = 0; j < 3; j++) {
		if ((rc = sm__pl_cancelled(R)) != 0)
			return rc;
		if (n > 0 && (rc = sm__pl_read_gas(R, gas_names[j], 0, n, *f[j])) != 0)
			return rc;
		sm__pl_progress(R, SM_STAGE_LOAD_GAS_FIELDS, -1, (uint64_t)(j + 1) * n, 3 * n);
	}
	sm__pl_stage_end(R);
	return 0;
}
