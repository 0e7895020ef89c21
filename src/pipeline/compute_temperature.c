/*
 * Stage compute_temperature (step 3; docs/MODEL.md, DESIGN.md's definition): T = (gamma-1) u / k_B
 * UnitVelocity^2 mu, computed in double and stored as float32, star-forming cells stored as -T
 * (the sign bit is the flag, no extra array), on all usable CPUs (a vectorised kernel per block
 * of TEMP_BLOCK cells, the scalar definition only to name a bad value). In memory it reads the
 * three fields load_gas_fields left and frees them; streaming (--temperature streaming) it reads
 * them in blocks of --stream-block cells into three block-sized arrays of the same names. The
 * distributed run's stream_cells applies the same sm__pl_temperature_block to its blocks.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "run.h"

#define TEMP_BLOCK 4096u  /* cells per validity check in the temperature kernel */

/* The definition's temperature, term for term, in double. */
static inline double temperature_of(double uu, double x, double uv2)
{
	const double gm1 = SM_PIPELINE_GAMMA - 1.0, xh = SM_PIPELINE_XH;
	const double kb = SM_PIPELINE_KB, mp4 = 4.0 * SM_PIPELINE_MP;
	double mu = mp4 / (1.0 + 3.0 * xh + 4.0 * xh * x);

	return gm1 * uu / kb * uv2 * mu;
}

/* The temperature of cells [0, n): vectorisable (no branch, no libm call); returns nonzero when
 * a value is bad (non-finite or negative u or x_e, NaN SFR, or a finite u whose temperature
 * overflows float32), the cells' temperatures then being meaningless. */
__attribute__((target_clones("avx2", "default")))
SM__PL_VECTORISE static int temperature_kernel(const float *restrict u, const float *restrict xe,
			      const float *restrict sfr, float *restrict t, uint64_t n, double uv2)
{
	uint32_t ok = 1;
	uint64_t i;

	for (i = 0; i < n; i++) {
		double T = temperature_of(u[i], xe[i], uv2);
		float f;
		uint32_t bits;

		ok &= (uint32_t)(u[i] >= 0.0f) & (uint32_t)(u[i] <= FLT_MAX) &
		      (uint32_t)(xe[i] >= 0.0f) & (uint32_t)(xe[i] <= FLT_MAX) &
		      (uint32_t)(sfr[i] == sfr[i]);
		f = (float)T;
		ok &= (uint32_t)(f <= FLT_MAX);
		memcpy(&bits, &f, 4);
		bits ^= (uint32_t)(sfr[i] > 0) << 31;
		memcpy(&t[i], &bits, 4);
	}
	return ok == 0;
}

int sm__pl_temperature_cells(const float *u, const float *xe, const float *sfr, float *t,
			     uint64_t n, double uv2)
{
	uint64_t a;
	int bad = 0;

	for (a = 0; a < n && !bad; a += TEMP_BLOCK)
		bad = temperature_kernel(u + a, xe + a, sfr + a, t + a,
					 n - a < TEMP_BLOCK ? n - a : TEMP_BLOCK, uv2);
	return bad;
}

/* The first bad cell of [0, n) (the scalar definition of "bad"), or n. */
static uint64_t temperature_first_bad(const float *u, const float *xe, const float *sfr,
				      uint64_t n, double uv2)
{
	uint64_t i;

	for (i = 0; i < n; i++) {
		double uu = u[i], x = xe[i];

		if (!(uu >= 0) || !(x >= 0) || isinf(uu) || isinf(x) || isnan(sfr[i]) ||
		    !((float)temperature_of(uu, x, uv2) <= FLT_MAX))
			return i;
	}
	return n;
}

struct temp_job {
	const float *u, *xe, *sfr;
	float *t;
	uint64_t n;
	double uv2;
	uint64_t bad_block[SM__PL_MAX_THREADS]; /* first block with a bad value, or UINT64_MAX */
};

static void temperature_part(void *arg, unsigned part, unsigned parts)
{
	struct temp_job *J = arg;
	uint64_t nb = (J->n + TEMP_BLOCK - 1) / TEMP_BLOCK;
	uint64_t b0 = nb * part / parts, b1 = nb * (part + 1) / parts, b;

	J->bad_block[part] = UINT64_MAX;
	for (b = b0; b < b1; b++) {
		uint64_t a = b * TEMP_BLOCK, m = J->n - a < TEMP_BLOCK ? J->n - a : TEMP_BLOCK;

		if (temperature_kernel(J->u + a, J->xe + a, J->sfr + a, J->t + a, m, J->uv2)) {
			J->bad_block[part] = b;
			return;
		}
	}
}

/* Temperatures of cells [first, first + n) from the three fields, on the worker threads;
 * SM_EFORMAT naming the first bad value. */
int sm__pl_temperature_block(struct run *R, uint64_t first, uint64_t n, const float *u,
			     const float *xe, const float *sfr, float *t)
{
	struct temp_job J;
	unsigned parts = sm__pl_threads(), p;

	if (n < 65536)
		parts = 1;
	memset(&J, 0, sizeof(J));
	J.u = u;
	J.xe = xe;
	J.sfr = sfr;
	J.t = t;
	J.n = n;
	J.uv2 = R->uv2;
	sm__pl_parallel(temperature_part, &J, parts);
	for (p = 0; p < parts; p++) {
		uint64_t a, i;

		if (J.bad_block[p] == UINT64_MAX)
			continue;
		a = J.bad_block[p] * TEMP_BLOCK;
		i = a + temperature_first_bad(u + a, xe + a, sfr + a, n - a, R->uv2);
		if (i < n) {
			char where[SM_PATH_MAX];
			uint64_t local;
			double uu = u[i], x = xe[i];
			int overflow = uu >= 0 && x >= 0 && !isinf(uu) && !isinf(x) &&
				       !isnan(sfr[i]);
			const char *what = !(uu >= 0) || isinf(uu) || overflow
					   ? SM_ARRAY_INTERNAL_ENERGY
					   : !(x >= 0) || isinf(x) ? SM_ARRAY_ELECTRON_ABUNDANCE
								   : SM_ARRAY_STAR_FORMATION_RATE;
			double v = what[0] == 'I' ? uu : what[0] == 'E' ? x : (double)sfr[i];

			sm__pl_cell_location(R, first + i, where, sizeof(where), &local);
			if (overflow)
				return sm_error_set(R->err, SM_EFORMAT,
						    "'%s': /PartType0/InternalEnergy[%llu] is %g (gas "
						    "cell %llu): its temperature, %g K, does not "
						    "fit float32", where, (unsigned long long)local, v,
						    (unsigned long long)(first + i),
						    temperature_of(uu, x, R->uv2));
			return sm_error_set(R->err, SM_EFORMAT,
					    "'%s': /PartType0/%s[%llu] is %g (gas cell %llu): must be "
					    "finite and non-negative", where, what,
					    (unsigned long long)local, v,
					    (unsigned long long)(first + i));
		}
	}
	return 0;
}

int sm__pl_compute_temperature(struct run *R)
{
	uint64_t n = R->n, b, first;
	float **f[3] = {&R->u, &R->xe, &R->sfr};
	int rc, j;

	if ((rc = sm__pl_stage_begin(R, SM_STAGE_COMPUTE_TEMPERATURE, -1, n)) != 0 ||
	    (rc = sm__pl_palloc_filled(R, &R->temp, SM_ARRAY_TEMPERATURE, 4 * n)) != 0)
		return rc;
	if (R->o->model.temperature == SM_TEMP_IN_MEMORY) {
		if ((rc = sm__pl_temperature_block(R, 0, n, R->u, R->xe, R->sfr, R->temp)) != 0)
			return rc;
	} else {
		b = R->o->model.stream_block < n ? R->o->model.stream_block : n;
		for (j = 0; j < 3; j++)
			if ((rc = sm__pl_palloc_filled(R, f[j], sm__pl_gas_names[j], 4 * b)) != 0)
				return rc;
		for (first = 0; first < n; first += b) {
			uint64_t cnt = n - first < b ? n - first : b;

			if ((rc = sm__pl_cancelled(R)) != 0)
				return rc;
			for (j = 0; j < 3; j++)
				if ((rc = sm__pl_read_gas(R, sm__pl_gas_names[j], first, cnt,
							  *f[j])) != 0)
					return rc;
			if ((rc = sm__pl_temperature_block(R, first, cnt, R->u, R->xe, R->sfr,
							   R->temp + first)) != 0)
				return rc;
			sm__pl_progress(R, SM_STAGE_COMPUTE_TEMPERATURE, -1, first + cnt, n);
		}
	}
	for (j = 0; j < 3; j++)
		sm__pl_pfree(R, f[j]);
	sm__pl_stage_end(R);
	return 0;
}
