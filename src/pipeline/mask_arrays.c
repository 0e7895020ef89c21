/*
 * Stage mask_arrays (step 7, per halo; docs/MODEL.md): the selected cells' temperatures and
 * positions gathered into selected_temperature[s] and selected_positions[s] (the positions' type),
 * in selection order, as the notebook's boolean indexing does. The index strategy's list is shared
 * out to the worker threads for large spheres; the mask strategy walks the mask.
 */
#include <stdint.h>
#include <string.h>

#include "run.h"

struct gather_job {
	const struct run *R;
	uint64_t s;
};

/* Part p of the index list: rows j of its share. */
static void gather_part(void *arg, unsigned part, unsigned parts)
{
	const struct gather_job *J = arg;
	const struct run *R = J->R;
	uint64_t ja = J->s * part / parts, jb = J->s * (part + 1) / parts, j;
	unsigned char *dst = R->sel_pos;
	const unsigned char *src = R->coords;
	size_t row = 3 * R->psz;

	/* The list runs through whole grid cells, whose cells lie next to each other (build_index's
	 * sort): each run of consecutive cells is copied at once. */
	for (j = ja; j < jb;) {
		const uint64_t i = sm__pl_sphere_cell(R, j);
		uint64_t k = 1;

		while (j + k < jb && sm__pl_sphere_cell(R, j + k) == i + k)
			k++;
		memcpy(R->sel_t + j, R->temp + i, k * sizeof(float));
		memcpy(dst + j * row, src + i * row, k * row);
		j += k;
	}
}

/* The mask strategy: the cells whose mask byte is set, in cell order. */
static void gather_by_mask(const struct run *R)
{
	unsigned char *dst = R->sel_pos;
	const unsigned char *src = R->coords;
	size_t row = 3 * R->psz;
	uint64_t i, j = 0;

	for (i = 0; i < R->n; i++) {
		if (!R->mask[i])
			continue;
		R->sel_t[j] = R->temp[i];
		memcpy(dst + j * row, src + i * row, row);
		j++;
	}
}

int sm__pl_mask_arrays(struct run *R, uint64_t h, uint64_t s)
{
	int rc;

	if ((rc = sm__pl_stage_begin(R, SM_STAGE_MASK_ARRAYS, (int64_t)h, R->k)) != 0 ||
	    (rc = sm__pl_palloc(R, &R->sel_t, SM_ARRAY_SELECTED_TEMPERATURE, 4 * s)) != 0 ||
	    (rc = sm__pl_palloc(R, &R->sel_pos, SM_ARRAY_SELECTED_POSITIONS, 3 * s * R->psz)) != 0)
		return rc;
	if (R->o->model.select == SM_SELECT_INDEX) {
		struct gather_job J = {R, s};

		sm__pl_parallel(gather_part, &J, sm__pl_halo_parts(s, SM__PL_HALO_PART_MIN_CELLS));
	} else {
		gather_by_mask(R);
	}
	sm__pl_stage_end(R);
	return 0;
}
