/*
 * snapmem's stage profiler: a library any C program can link to learn what each of its stages took
 * and where its peak came from. It knows nothing of snapshots.
 *
 * - Stages: sm_prof_stage_begin/end by id, nestable (a per-iteration sub-stage carries an
 *   `instance` number, e.g. a halo index; -1 for none). For each stage record: requested bytes of
 *   tracked arrays (live at begin/end, peak inside), jemalloc stats.allocated/active/resident/mapped
 *   at begin and end, the peak allocated inside the stage (thread.peak), VmRSS/VmHWM, wall and CPU
 *   time, and the top allocation sites live at the stage's peak.
 * - Tracked arrays: sm_prof_alloc(p, name, bytes) allocates through jemalloc and records the array
 *   under its name and the current stage, so that measurement lines up with the estimator's named
 *   arrays. Requested bytes are exact; allocated bytes are jemalloc's usable size (sallocx).
 * - Allocation sites: the call stack (libunwind) of every tracked array, and of untracked
 *   allocations: always above a size threshold, sampled below it (see README "Profiler").
 * - Timeline: a sampler thread records allocated and resident bytes at a set rate, with stage
 *   boundaries marked.
 * - Output: one JSON document (jansson), schema "snapmem.memory/1" in README.md.
 *
 * The profiler never prints, never exits and never crashes its host: an unwinder or hook failure is
 * recorded in the output, not fatal. A NULL sm_prof is valid everywhere and means "profiling off":
 * sm_prof_alloc(NULL, ...) is plain malloc, stage calls do nothing. Under -DSM_NO_JEMALLOC (sanitizer
 * builds) the jemalloc figures are absent (reported as such) and only tracked figures are measured.
 *
 * Threads: one sm_prof is driven from one thread (the one that calls stage_begin/end and the
 * tracked allocations); see README for how allocations by other threads are counted.
 */
#ifndef SNAPMEM_PROFILER_H
#define SNAPMEM_PROFILER_H

#include <stddef.h>
#include <stdint.h>

#include "snapmem/error.h"

typedef struct sm_prof sm_prof;

typedef struct sm_prof_options {
	int jemalloc;                    /* read jemalloc statistics (default 1; 0 when not linked) */
	int sites;                       /* record call stacks of tracked arrays (default 1) */
	int sample_untracked;            /* sample untracked allocations (default 1) */
	uint64_t site_threshold_bytes;   /* untracked allocations >= this always unwound (1 MiB) */
	uint64_t sample_interval_bytes;  /* below it: one unwind per this many bytes on average (512 KiB) */
	int max_frames;                  /* frames kept per stack (default 24) */
	double timeline_hz;              /* sampler rate; 0 = no timeline (default 100) */
	size_t max_timeline_samples;     /* bound; older samples are thinned when full (default 65536) */
	size_t max_sites;                /* bound on distinct sites kept (default 4096) */
} sm_prof_options;

void sm_prof_options_init(sm_prof_options *o);

/* Creates a profiler; records the baseline (jemalloc stats, VmRSS) at this moment.
 * 0 or SM_ENOMEM / SM_EINVAL. */
int sm_prof_create(const sm_prof_options *o, sm_prof **out, sm_error *err);

/* Stops the sampler, frees everything. Accepts NULL. */
void sm_prof_free(sm_prof *p);

/* Begins a stage nested in the current one. id is copied (at most 63 bytes). 0 or SM_ENOMEM. */
int sm_prof_stage_begin(sm_prof *p, const char *id, int64_t instance);

/* Ends the innermost open stage. 0, or SM_EINVAL when no stage is open. */
int sm_prof_stage_end(sm_prof *p);

/*
 * Allocates a tracked array of `bytes` bytes (uninitialised) named `name` (copied, at most 63
 * bytes) in the current stage. On failure returns NULL and sets err to SM_ENOMEM with
 * err->needed_bytes = bytes and a message naming the array and its size in bytes and IEC units.
 * bytes == 0 returns a valid unique pointer for a zero-length array. An array of 2 MiB or more
 * starts on a 2 MiB boundary (profiling on or off), so that transparent huge pages can back every
 * whole 2 MiB of it; its allocated size (jemalloc's size class) is the same as unaligned. Under
 * `snapmem profile` (the preloaded profiler) large arrays are glibc's, as the program's own large
 * mallocs are, and not aligned.
 */
void *sm_prof_alloc(sm_prof *p, const char *name, uint64_t bytes, sm_error *err);

/* As sm_prof_alloc, zero-filled; count * size is overflow-checked (SM_EOVERFLOW). */
void *sm_prof_calloc(sm_prof *p, const char *name, uint64_t count, uint64_t size, sm_error *err);

/* Frees a tracked array (NULL is fine); records when and in which stage it was freed. */
void sm_prof_release(sm_prof *p, void *ptr);

/* jemalloc's size class for a request (nallocx); the request itself without jemalloc. */
uint64_t sm_prof_nallocx(uint64_t bytes);

/* What `snapmem profile` counts as allocated for a request (docs/PROFILE.md "Large blocks"):
 * sm_prof_nallocx below SM_PROF_LARGE_MIN; at and above, glibc's usable size of a mapped chunk
 * (the request with glibc's 16-byte header, rounded up to the page, less the header), which a chunk
 * of glibc's heap undercuts by less than a page. */
#define SM_PROF_LARGE_MIN ((uint64_t)128 << 10)
uint64_t sm_prof_profile_allocated(uint64_t bytes);

/* Requested bytes of tracked arrays live now. */
uint64_t sm_prof_live_requested(const sm_prof *p);

/* The bytes from ptr (a live array of sm_prof_alloc with the same p) that its allocation owns:
 * its usable size, at least the request; 0 when unknown (the preloaded profiler's arrays). */
uint64_t sm_prof_usable(sm_prof *p, void *ptr);

/* Fault injection for tests: make the nth (1-based) tracked allocation from now fail as out of
 * memory; name != NULL restricts counting to arrays of that name. n == 0 disarms. */
void sm_prof_inject_failure(sm_prof *p, const char *name, uint64_t n);

/* Attaches a JSON text (an object) under key `key` at the top of the output (e.g. "run"). Replaces
 * an earlier value of the same key. 0 or SM_EINVAL when json is not an object. */
int sm_prof_set_meta(sm_prof *p, const char *key, const char *json_object_text);

/* Marks the document incomplete (e.g. interrupted), with a reason; open stages are closed at the
 * moment of writing and flagged. */
void sm_prof_mark_incomplete(sm_prof *p, const char *reason);

/* The JSON document as a malloc'd string (caller frees). NULL on allocation failure. */
char *sm_prof_json(sm_prof *p);

/* Writes the JSON document to path through a temporary file and rename. 0 or SM_EIO. */
int sm_prof_write_json(sm_prof *p, const char *path, sm_error *err);

/* ---- read access for tests and embedders ------------------------------------------------- */

/*
 * Where a stage's time goes. The host adds the seconds it spent reading input and mapping memory
 * in (sm_prof_time_add); the profiler times its own frees of tracked arrays (sm_prof_release).
 * Each part counts in the innermost open stage and in every stage enclosing it (as wall_s does);
 * memory.json writes each stage's "time" {"read_s", "prefault_s", "free_s", "compute_s"},
 * compute_s being the rest of wall_s.
 */
typedef enum sm_prof_part {
	SM_PROF_PART_READ,
	SM_PROF_PART_PREFAULT,
	SM_PROF_PART_FREE,
	SM_PROF_NPARTS
} sm_prof_part;

/* Adds seconds to part of the open stages (nothing when no stage is open or p is NULL). */
void sm_prof_time_add(sm_prof *p, sm_prof_part part, double seconds);

typedef struct sm_prof_je {      /* jemalloc stats.*, bytes; all 0 when not measured */
	uint64_t allocated, active, resident, mapped;
} sm_prof_je;

typedef struct sm_prof_stage_info {
	const char *id;
	int64_t instance;
	int depth;                    /* 0 for top-level stages */
	int parent;                   /* index of the enclosing stage, -1 at top level */
	int open;                     /* still open */
	uint64_t requested_live_begin, requested_live_end, requested_peak;
	uint64_t tracked_allocated_peak; /* usable bytes of tracked arrays live at the requested peak */
	sm_prof_je je_begin, je_end;
	uint64_t allocated_peak;      /* process stats.allocated peak inside the stage (0 = unknown) */
	uint64_t vm_rss_begin, vm_rss_end, vm_hwm_end;
	double t_begin, wall_s, cpu_s;   /* seconds since sm_prof_create */
	double part_s[SM_PROF_NPARTS];   /* seconds in each part (sm_prof_time_add) */
} sm_prof_stage_info;

size_t sm_prof_stage_count(const sm_prof *p);
int sm_prof_stage_get(const sm_prof *p, size_t i, sm_prof_stage_info *out); /* 0 or SM_EINVAL */

typedef struct sm_prof_array_info {
	const char *name;
	const char *stage;            /* stage id current at allocation ("" outside any stage) */
	int64_t instance;
	uint64_t requested, allocated;
	int live;
	int site;                     /* index into the site table, -1 when not recorded */
} sm_prof_array_info;

size_t sm_prof_array_count(const sm_prof *p);
int sm_prof_array_get(const sm_prof *p, size_t i, sm_prof_array_info *out);

/* 1 when jemalloc statistics are measured in this build and process. */
int sm_prof_have_jemalloc(void);

/*
 * 0 when the allocator can serve the calling thread. jemalloc 5.3 crashes when it cannot map the
 * memory a thread needs on its first call (the address space under `ulimit -v` nearly all taken
 * by the libraries), so the malloc layer lets no thread in with less than 8 MiB of headroom under
 * RLIMIT_AS / RLIMIT_DATA: its allocations fail with ENOMEM instead. Then this returns SM_ELIMIT
 * with one line naming the limit, what is mapped and what the allocator needs. Always 0 without
 * jemalloc. A program calls it first thing in main (snapmem does, exit 3).
 */
int sm_prof_allocator_ready(sm_error *err);

#endif
