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

/* The mask strategy: the cells whose mask byte is set, in cell order, each worker thread taking
 * its select_sphere share of the cells (sm__pl_mask_share). */
static void gather_mask_part(void *arg, unsigned part, unsigned parts)
{
	const struct gather_job *J = arg;
	const struct run *R = J->R;
	const size_t row = 3 * R->psz;
	uint64_t a, b, i, e, j = sm__pl_mask_share(R, part, &a, &b);
	uint32_t idx[SM__PL_MASK_CHUNK];
	unsigned n, q;

	(void)parts;
	for (i = a; i < b; i += SM__PL_MASK_CHUNK, j += n) {
		const unsigned char *src = (const unsigned char *)R->coords + i * row;
		unsigned char *dst = (unsigned char *)R->sel_pos + j * row;
		const float *t = R->temp + i;
		float *st = R->sel_t + j;

		e = b - i < SM__PL_MASK_CHUNK ? b : i + SM__PL_MASK_CHUNK;
		n = sm__pl_mask_chunk(R->mask, i, e, idx);
		for (q = 0; q < n; q++)
			st[q] = t[idx[q]];
		if (row == 12)
			for (q = 0; q < n; q++)
				memcpy(dst + 12 * q, src + 12 * (uint64_t)idx[q], 12);
		else
			for (q = 0; q < n; q++)
				memcpy(dst + 24 * q, src + 24 * (uint64_t)idx[q], 24);
	}
}

int sm__pl_mask_arrays(struct run *R, uint64_t h, uint64_t s)
{
	int rc;

	if ((rc = sm__pl_stage_begin(R, SM_STAGE_MASK_ARRAYS, (int64_t)h, R->k)) != 0 ||
	    (rc = sm__pl_palloc_filled(R, &R->sel_t, SM_ARRAY_SELECTED_TEMPERATURE, 4 * s)) != 0 ||
	    (rc = sm__pl_palloc_filled(R, &R->sel_pos, SM_ARRAY_SELECTED_POSITIONS,
				       3 * s * R->psz)) != 0)
		return rc;
	if (R->o->model.select == SM_SELECT_INDEX) {
		struct gather_job J = {R, s};

		sm__pl_parallel(gather_part, &J, sm__pl_halo_parts(s, SM__PL_HALO_PART_MIN_CELLS));
	} else {
		struct gather_job J = {R, s};

		sm__pl_parallel(gather_mask_part, &J, R->mask_parts);
	}
	sm__pl_stage_end(R);
	return 0;
}
