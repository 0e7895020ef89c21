/*
 * profile-stages: the smallest complete use of snapmem's profiler. A program with three stages
 * (load, compute, reduce) allocates its arrays through the profiler, then prints what each stage
 * took and writes memory.json (argv[1], default ./memory.json).
 *
 *   build/examples/profile-stages [memory.json]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapmem/profiler.h"
#include "snapmem/units.h"

#define N (4u << 20) /* 4 Mi floats per array: 16 MiB */

int main(int argc, char **argv)
{
	const char *out = argc > 1 ? argv[1] : "memory.json";
	sm_prof *prof = NULL;
	sm_error err = { 0 };
	if (sm_prof_create(NULL, &prof, &err) != 0) {
		fprintf(stderr, "profile-stages: %s\n", err.msg);
		return 3;
	}

	sm_prof_stage_begin(prof, "load", -1);
	float *a = sm_prof_alloc(prof, "a", N * sizeof(float), &err);
	float *b = sm_prof_alloc(prof, "b", N * sizeof(float), &err);
	if (!a || !b)
		goto oom;
	for (size_t i = 0; i < N; i++)
		a[i] = (float)i, b[i] = 1.0f;
	sm_prof_stage_end(prof);

	sm_prof_stage_begin(prof, "compute", -1);
	float *c = sm_prof_alloc(prof, "c", N * sizeof(float), &err);
	if (!c)
		goto oom;
	for (size_t i = 0; i < N; i++)
		c[i] = a[i] * b[i];
	sm_prof_release(prof, a);
	sm_prof_release(prof, b);
	sm_prof_stage_end(prof);

	sm_prof_stage_begin(prof, "reduce", -1);
	/* untracked scratch (>= 1 MiB, so it always shows up as an allocation site) */
	double *volatile scratch = malloc(3 << 20);
	double sum = 0;
	for (size_t i = 0; i < N; i++)
		sum += c[i];
	scratch[0] = sum;
	free(scratch);
	sm_prof_release(prof, c);
	sm_prof_stage_end(prof);

	printf("sum %.6g\n%-8s %12s %12s %12s %8s\n", sum, "stage", "requested", "alloc. peak",
	       "VmRSS end", "wall s");
	for (size_t i = 0; i < sm_prof_stage_count(prof); i++) {
		sm_prof_stage_info s;
		char r[32], a2[32], v[32];
		sm_prof_stage_get(prof, i, &s);
		printf("%-8s %12s %12s %12s %8.3f\n", s.id, sm_format_iec(s.requested_peak, r, 32),
		       sm_format_iec(s.allocated_peak, a2, 32), sm_format_iec(s.vm_rss_end, v, 32),
		       s.wall_s);
	}
	if (sm_prof_write_json(prof, out, &err) != 0) {
		fprintf(stderr, "profile-stages: %s\n", err.msg);
		sm_prof_free(prof);
		return 2;
	}
	printf("wrote %s\n", out);
	sm_prof_free(prof);
	return 0;
oom:
	fprintf(stderr, "profile-stages: %s\n", err.msg);
	sm_prof_free(prof);
	return 3;
}
