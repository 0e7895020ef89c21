/*
 * benchmark-alloc: the allocation-heavy microbenchmark for the profiler's cost. PAIRS (default
 * 5,000,000) malloc/free pairs of 16..528 bytes over 256 slots, either plain or with a profiler
 * running (sites, untracked sampling and timeline at their defaults, one stage around the loop).
 * Prints one JSON line: mode, pairs, elapsed seconds and the process peak (VmHWM).
 *
 *   benchmark-alloc plain|profiled [PAIRS]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "snapmem/profiler.h"
#include "snapmem/units.h"

static uint64_t vm_hwm(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	uint64_t kb = 0;
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "VmHWM:", 6) == 0)
			kb = strtoull(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return kb * 1024;
}

int main(int argc, char **argv)
{
	uint64_t pairs = 5000000;
	sm_error err = { 0 };
	if (argc < 2 || (strcmp(argv[1], "plain") != 0 && strcmp(argv[1], "profiled") != 0) ||
	    (argc > 2 && sm_parse_u64("PAIRS", argv[2], &pairs, &err) != 0)) {
		fprintf(stderr, "usage: benchmark-alloc plain|profiled [PAIRS]%s%s\n",
			err.code ? ": " : "", err.msg);
		return 2;
	}
	int profiled = strcmp(argv[1], "profiled") == 0;
	sm_prof *prof = NULL;
	if (profiled && sm_prof_create(NULL, &prof, &err) != 0) {
		fprintf(stderr, "benchmark-alloc: %s\n", err.msg);
		return 3;
	}
	static void *slot[256];
	uint64_t x = 88172645463325252ull, touched = 0;
	sm_prof_stage_begin(prof, "loop", -1);
	double t0 = bench_now();
	for (uint64_t i = 0; i < pairs; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		unsigned k = x & 255;
		size_t size = 16 + (size_t)((x >> 8) % 513);
		free(slot[k]);
		slot[k] = malloc(size);
		if (!slot[k])
			return 3;
		*(volatile char *)slot[k] = 1;
		touched += size;
	}
	double dt = bench_now() - t0;
	sm_prof_stage_end(prof);
	for (int k = 0; k < 256; k++)
		free(slot[k]);
	uint64_t samples = 0;
	if (prof) {
		char *js = sm_prof_json(prof);
		const char *s = js ? strstr(js, "\"samples\":") : NULL;
		if (s)
			samples = strtoull(s + 10, NULL, 10);
		free(js);
	}
	printf("{\"benchmark\": \"alloc\", \"mode\": \"%s\", \"pairs\": %llu, \"bytes\": %llu, "
	       "\"seconds\": %.6f, \"peak_bytes\": %llu, \"samples\": %llu}\n",
	       argv[1], (unsigned long long)pairs, (unsigned long long)touched, dt,
	       (unsigned long long)vm_hwm(), (unsigned long long)samples);
	sm_prof_free(prof);
	return 0;
}
