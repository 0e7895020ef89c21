/*
 * Stage radial_distance (step 6, per halo; docs/MODEL.md): radius[s], the distance of each selected
 * cell to the halo's centre, in the positions' own type, by the same minimum-image function that
 * selected it (sm__pl_dist_f32/f64), in selection order. The index strategy's list is shared out
 * to the worker threads for large spheres; the mask strategy walks the mask.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "run.h"

struct radius_job {
	const struct run *R;
	uint64_t h, s;
};

/* The distances of n cells that lie next to each other (x their first) to c, in a loop that
 * vectorises (the Makefile gives this file -fno-math-errno so that sqrtf may be). */
__attribute__((target_clones("avx2", "default")))
SM__PL_VECTORISE static void dist_run_f32(const float *restrict x, uint64_t n, const float *c,
					  float box, float half, float *restrict out)
{
	const float c0 = c[0], c1 = c[1], c2 = c[2];
	uint64_t q;

	for (q = 0; q < n; q++)
		out[q] = sm__pl_dist_xyz_f32(x[3 * q], x[3 * q + 1], x[3 * q + 2], c0, c1, c2, box,
					     half);
}

/* Part p of the index list: radius[j] for j in its share. The list runs through whole grid cells,
 * whose cells lie next to each other (build_index's sort): float32 distances are taken a run of
 * consecutive cells at a time. */
static void radius_part(void *arg, unsigned part, unsigned parts)
{
	const struct radius_job *J = arg;
	const struct run *R = J->R;
	const double *cd = &R->halo_center[3 * J->h];
	uint64_t ja = J->s * part / parts, jb = J->s * (part + 1) / parts, j;

	if (R->pt == SM_DTYPE_F32) {
		float c[3] = {(float)cd[0], (float)cd[1], (float)cd[2]};
		float box = (float)R->box, *rad = R->radius;
		const float *x = R->coords;

		for (j = ja; j < jb;) {
			const uint64_t i = sm__pl_sphere_cell(R, j);
			uint64_t k = 1;

			while (j + k < jb && sm__pl_sphere_cell(R, j + k) == i + k)
				k++;
			dist_run_f32(x + 3 * i, k, c, box, box / 2, rad + j);
			j += k;
		}
	} else {
		double *rad = R->radius;
		const double *x = R->coords;

		for (j = ja; j < jb; j++)
			rad[j] = sm__pl_dist_f64(x + 3 * sm__pl_sphere_cell(R, j), cd, R->box,
						 R->box / 2);
	}
}

/* The mask strategy: the cells whose mask byte is set, in cell order, each worker thread taking
 * the share of the cells it had in select_sphere (sm__pl_mask_share: its first cell's place in
 * the selection is the shares' counts before it), a chunk's cells found first
 * (sm__pl_mask_chunk), then their distances in a loop of independent loads. */
static void radius_mask_part(void *arg, unsigned part, unsigned parts)
{
	const struct radius_job *J = arg;
	const struct run *R = J->R;
	const double *cd = &R->halo_center[3 * J->h];
	uint64_t a, b, i, e, j = sm__pl_mask_share(R, part, &a, &b);
	uint32_t idx[SM__PL_MASK_CHUNK];
	unsigned n, q;

	(void)parts;
	for (i = a; i < b; i += SM__PL_MASK_CHUNK, j += n) {
		e = b - i < SM__PL_MASK_CHUNK ? b : i + SM__PL_MASK_CHUNK;
		n = sm__pl_mask_chunk(R->mask, i, e, idx);
		if (R->pt == SM_DTYPE_F32) {
			const float c0 = (float)cd[0], c1 = (float)cd[1], c2 = (float)cd[2];
			const float box = (float)R->box, half = box / 2;
			const float *x = (const float *)R->coords + 3 * i;
			float *rad = (float *)R->radius + j;

			for (q = 0; q < n; q++) {
				const float *p = x + 3 * (uint64_t)idx[q];

				rad[q] = sm__pl_dist_xyz_f32(p[0], p[1], p[2], c0, c1, c2, box, half);
			}
		} else {
			const double *x = (const double *)R->coords + 3 * i;
			double *rad = (double *)R->radius + j;

			for (q = 0; q < n; q++)
				rad[q] = sm__pl_dist_f64(x + 3 * (uint64_t)idx[q], cd, R->box,
							 R->box / 2);
		}
	}
}

int sm__pl_radial_distance(struct run *R, uint64_t h, uint64_t s)
{
	int rc;

	if ((rc = sm__pl_stage_begin(R, SM_STAGE_RADIAL_DISTANCE, (int64_t)h, R->k)) != 0 ||
	    (rc = sm__pl_palloc_filled(R, &R->radius, SM_ARRAY_RADIUS, s * R->psz)) != 0)
		return rc;
	if (R->o->model.select == SM_SELECT_INDEX) {
		struct radius_job J = {R, h, s};

		sm__pl_parallel(radius_part, &J, sm__pl_halo_parts(s, SM__PL_HALO_PART_MIN_CELLS));
	} else {
		struct radius_job J = {R, h, s};

		sm__pl_parallel(radius_mask_part, &J, R->mask_parts);
	}
	sm__pl_stage_end(R);
	return 0;
}
