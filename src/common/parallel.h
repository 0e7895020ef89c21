/*
 * Worker threads shared inside the library (not public API): the pipeline's kernels and the
 * snapshot reader's fast path run their parts through sm__parallel. The functions run as parts
 * never allocate (docs/PROFILER.md's thread rule) and never call HDF5.
 */
#ifndef SNAPMEM_COMMON_PARALLEL_H
#define SNAPMEM_COMMON_PARALLEL_H

#include <pthread.h>
#include <stddef.h>

#define SM__MAX_THREADS 8u

/* Starts one of the library's own threads (the workers, the profiler's timeline) with a stack of
 * stack_bytes (0: the default) and every signal blocked in it: a signal sent to the process is
 * taken by one of the program's threads, so no handler (the program's, the CLI's, the preload's)
 * ever runs on a library thread. pthread_create's result. */
int sm__thread_start(pthread_t *th, size_t stack_bytes, void *(*fn)(void *), void *arg);

/* This process's id without a system call (getpid is one, ~1 us in a VM; the worker pool and the
 * profiler ask at every job and stage boundary to notice a fork): read once, and again in a child
 * of fork() (pthread_atfork). */
int sm__pid(void);

/* One part of a parallel job: part in [0, parts). Must not allocate. */
typedef void (*sm__part_fn)(void *arg, unsigned part, unsigned parts);

/* The number of parts worth running: usable CPUs (at most SM__MAX_THREADS), or
 * SNAPMEM_THREADS. */
unsigned sm__threads(void);

/* 1 when this CPU has AVX / AVX2 (0 elsewhere than x86-64): the kernels written for either
 * (the fast path's narrowing, stream_cells' grid cells) choose their loop with these. */
int sm__cpu_avx(void);
int sm__cpu_avx2(void);

/* on: the calling thread's next jobs come back to back, so that waits between them spin briefly
 * before sleeping (while every part has a CPU); off (the default) again after them. */
void sm__parallel_spin(int on);

/* Runs fn(arg, p, parts) for every p in [0, parts) at once and returns when all are done; the
 * calling thread runs part 0 (and any part whose thread could not be started). */
void sm__parallel(sm__part_fn fn, void *arg, unsigned parts);

#endif
