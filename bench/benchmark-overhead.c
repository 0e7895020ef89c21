/*
 * benchmark-overhead: the profiler's cost to the pipeline's stages, as CPU time — robust to a
 * loaded machine in a way that wall time is not (on a machine shared by several users the wall
 * time of one run varies by 2x while its CPU time varies by a few percent). One process runs
 * sm_pipeline_run once, profiled (sm_prof_create with the defaults, as `snapmem run`) or not (as
 * `snapmem run --no-profile`), with HDF5's free lists off in both (sm_hdf5_lean, as the CLI), and
 * reports around that call only: wall seconds, the process's CPU seconds (user + system, all
 * threads: the profiler's sampler thread included), and its minor page faults. Run it in
 * interleaved pairs and take the median of the ratios.
 *
 * Usage: benchmark-overhead BASE SNAP OUTDIR profiled|plain
 * Prints one JSON line:
 * {"mode":"profiled","wall_s":x,"cpu_s":y,"user_s":u,"sys_s":s,"minor_faults":n}
 * (cpu_s = user_s + sys_s: the system part is where a run's first touches of fresh memory land).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bench.h"
#include "snapmem/pipeline.h"
#include "snapmem/profiler.h"
#include "snapmem/snapshot.h"

/* jemalloc's options as `snapmem run` has them (src/cli/main.c): one ordinary arena. */
const char *malloc_conf = "narenas:1";

static double user_s(const struct rusage *u)
{
	return (double)u->ru_utime.tv_sec + (double)u->ru_utime.tv_usec * 1e-6;
}

static double sys_s(const struct rusage *u)
{
	return (double)u->ru_stime.tv_sec + (double)u->ru_stime.tv_usec * 1e-6;
}

int main(int argc, char **argv)
{
	sm_pipeline_options o;
	sm_pipeline_result r;
	sm_prof *p = NULL;
	sm_error err;
	struct rusage a, b;
	double t0, t1;
	int profiled, rc;

	if (argc != 5 || (strcmp(argv[4], "profiled") != 0 && strcmp(argv[4], "plain") != 0)) {
		fprintf(stderr, "usage: benchmark-overhead BASE SNAP OUTDIR profiled|plain\n");
		return 2;
	}
	profiled = strcmp(argv[4], "profiled") == 0;
	sm_error_clear(&err);
	memset(&r, 0, sizeof(r));
	sm_hdf5_lean();
	if (profiled && sm_prof_create(NULL, &p, &err) != 0) {
		fprintf(stderr, "benchmark-overhead: %s\n", err.msg);
		return 2;
	}
	sm_pipeline_options_init(&o);
	o.base_path = argv[1];
	o.snap = atoi(argv[2]);
	o.out_dir = argv[3];
	getrusage(RUSAGE_SELF, &a);
	t0 = bench_now();
	rc = sm_pipeline_run(&o, p, &r, &err);
	t1 = bench_now();
	getrusage(RUSAGE_SELF, &b);
	if (rc != 0) {
		fprintf(stderr, "benchmark-overhead: %s\n", err.msg);
		sm_prof_free(p);
		return 2;
	}
	printf("{\"mode\":\"%s\",\"wall_s\":%.6f,\"cpu_s\":%.6f,\"user_s\":%.6f,\"sys_s\":%.6f,"
	       "\"minor_faults\":%ld}\n",
	       argv[4], t1 - t0, user_s(&b) - user_s(&a) + sys_s(&b) - sys_s(&a),
	       user_s(&b) - user_s(&a), sys_s(&b) - sys_s(&a), b.ru_minflt - a.ru_minflt);
	sm_pipeline_result_release(&r);
	sm_prof_free(p);
	return 0;
}
