/*
 * lib-markers: a C program that marks its stages through the existing profiler API with a NULL
 * profiler (profiling off when run plainly), linked twice by the Makefile. Under `snapmem profile`
 * the calls reach the preloaded profiler: stage "load" with a tracked 8 MiB array "grid", then
 * stage "reduce" (instance 3) with a 2 MiB array "partial". Exit 0, 3 when an allocation fails.
 */
#include <string.h>

#include "snapmem/profiler.h"

int main(void)
{
	sm_error err = { 0 };
	sm_prof_stage_begin(NULL, "load", -1);
	char *grid = sm_prof_alloc(NULL, "grid", 8u << 20, &err);
	if (!grid)
		return 3;
	memset(grid, 1, 8u << 20);
	sm_prof_stage_end(NULL);
	sm_prof_stage_begin(NULL, "reduce", 3);
	char *part = sm_prof_calloc(NULL, "partial", 2u << 20, 1, &err);
	if (!part)
		return 3;
	sm_prof_release(NULL, part);
	sm_prof_release(NULL, grid);
	sm_prof_stage_end(NULL);
	return 0;
}
