/*
 * What memory this process may use, and whether a run of a given size fits in it (docs/PIPELINE.md
 * "Memory limits").
 *
 * Four limits are read: the address-space limit (RLIMIT_AS, `ulimit -v`), the data limit
 * (RLIMIT_DATA, `ulimit -d`: on Linux since 4.7 it counts every private writable mapping, so
 * jemalloc's anonymous maps too), the memory cgroup's limit along the process's cgroup path (v2
 * memory.max, v1 memory.limit_in_bytes; the tightest ancestor binds) and the kernel's MemAvailable
 * (/proc/meminfo). sm_mem_limits_read gathers them; sm_mem_limits_check, a pure function, compares
 * them with what a run needs, so that the comparison is testable with any figures.
 *
 * Two needs, because the limits count different things:
 * - address space (RLIMIT_AS, RLIMIT_DATA): the least address space the whole process can do with
 *   at its peak, the estimator's (sm_estimate.least_address_space, docs/MODEL.md "The four
 *   peaks"); for RLIMIT_DATA, what it adds to what is mapped now counts on top of VmData now;
 * - resident (cgroup, MemAvailable): the pages the run touches, the requested bytes at the peak
 *   plus the process baseline.
 * The cgroup's allowance is its limit minus what the rest of the cgroup holds and cannot give back:
 * usage - page cache (reclaimable) - this process's resident set. MemAvailable already counts the
 * page cache the kernel can reclaim; this process's resident set is added to it, since the need
 * includes it.
 */
#ifndef SNAPMEM_LIMITS_H
#define SNAPMEM_LIMITS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "snapmem/error.h"

#define SM_LIMIT_NONE UINT64_MAX

typedef struct sm_mem_limits {
	uint64_t as_max;        /* RLIMIT_AS soft limit in bytes; SM_LIMIT_NONE: unlimited */
	uint64_t as_used;       /* VmSize: the address space mapped now */
	uint64_t data_max;      /* RLIMIT_DATA soft limit; SM_LIMIT_NONE: unlimited */
	uint64_t data_used;     /* VmData: private writable mappings now (heap, anonymous, stacks) */
	uint64_t cg_max;        /* the tightest memory cgroup limit on the path; SM_LIMIT_NONE: none */
	uint64_t cg_other;      /* what that cgroup holds besides this process, page cache excluded */
	char cg_file[512];      /* the file cg_max came from ("" when none) */
	uint64_t avail;         /* MemAvailable; SM_LIMIT_NONE: unknown */
	uint64_t rss;           /* VmRSS of this process now */
} sm_mem_limits;

/* Every limit "none", every figure 0. */
void sm_mem_limits_init(sm_mem_limits *l);

/*
 * Reads this process's limits. root is prepended to /proc and /sys paths ("" or NULL: the real
 * ones; a directory holding proc/self/status, proc/self/cgroup, proc/meminfo and sys/fs/cgroup/...
 * for tests); the rlimits always come from getrlimit. Anything unreadable counts as no limit
 * (unknown figures stay 0 or SM_LIMIT_NONE). Never fails: returns 0.
 */
int sm_mem_limits_read(sm_mem_limits *l, const char *root);

/*
 * The check, pure. resident: the bytes the run holds resident at its peak, process baseline
 * included; address: the least address space the whole process needs at its peak (absolute, not
 * added to what is mapped now; RLIMIT_DATA: VmData now + address - VmSize now). what names the subject of the message ("the run"). Returns 0 when every limit allows
 * it, else SM_ELIMIT with err holding one line naming the figure needed and the first limit that
 * does not allow it (in the order RLIMIT_AS, RLIMIT_DATA, cgroup, MemAvailable), and
 * err->needed_bytes set to the figure compared.
 */
int sm_mem_limits_check(const sm_mem_limits *l, uint64_t resident, uint64_t address,
			const char *what, sm_error *err);

/*
 * Headroom under RLIMIT_AS and RLIMIT_DATA now: the smaller of (limit - VmSize) and (limit -
 * VmData), SM_LIMIT_NONE when neither is set. Reads /proc/self/statm with plain system calls into
 * a stack buffer: it allocates nothing, so the malloc layer may call it before malloc works.
 * *limit receives the binding limit (SM_LIMIT_NONE when none), *used the mapped figure it was
 * compared with.
 */
uint64_t sm__vm_headroom(uint64_t *limit, uint64_t *used);

/* Reads a small file into buf, NUL-terminated: the bytes read, or -1 when it cannot be opened. */
ssize_t sm__read_small(const char *path, char *buf, size_t len);

/* This process's own cgroup v2 directory (the "0::" line of /proc/self/cgroup under the unified
 * hierarchy's mount) into dir: 0, or -1 when there is none (cgroup v1 only, or unreadable). */
int sm__cgroup2_dir(char *dir, size_t len);

#endif
