/*
 * Pieces shared by the benchmarks (bench/benchmark-*.c, each one program): a monotonic clock in
 * seconds and the comparison qsort needs for medians. Header-only, so that each benchmark stays a
 * single object linked against libsnapmem.
 */
#ifndef SNAPMEM_BENCH_H
#define SNAPMEM_BENCH_H

#include <time.h>

static inline double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

#endif
