/*
 * Shared internals of the stage profiler (every .c file in src/profiler); not a public header.
 *
 * Files and their jobs:
 *   core.c      options, stages, tracked arrays, fault injection, read access
 *   jemalloc.c  every call to mallctl/nallocx/mallocx/sallocx/dallocx and thread.peak (the only
 *               file that knows jemalloc); compiled to "not measured" stubs under SM_NO_JEMALLOC
 *   sites.c     call stacks (libunwind), the site table, the sampled-pointer table and the
 *               per-stage "top sites at the peak" snapshots; the profiler lock
 *   interpose.c malloc/free/... defined over jemalloc with the sampling countdown (jemalloc only)
 *   large.c     under `snapmem profile`, large requests served by glibc's malloc: the registry and
 *               its accounting (jemalloc only; off unless libsnapmem-preload.so turns it on)
 *   timeline.c  the sampler thread and its preallocated ring
 *   json.c      the memory.json document (jansson)
 *
 * Locking: one process-wide mutex (sm__lock) guards the active profiler's stage table, site table
 * and sampled-pointer table, because allocations on any thread may record a sample. Nothing that
 * holds the lock allocates through malloc: the profiler's own bookkeeping uses sm__raw_* (jemalloc's
 * mallocx directly, never the sampling layer) and the tables are mmap'd.
 */
#ifndef SNAPMEM_PROF_INTERNAL_H
#define SNAPMEM_PROF_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "snapmem/model.h"
#include "snapmem/profiler.h"

#define SM__TOP 10          /* top sites kept per stage */
#define SM__MAX_FRAMES 64   /* hard bound on max_frames */
#define SM__ID_MAX 64
#define SM__TL_DEPTH 32     /* stage depths for which the sampler keeps a running maximum */

/* ---- jemalloc.c ---------------------------------------------------------------------------- */
int sm__je_init(void);                     /* 0 when stats can be read; resolves MIBs once */
int sm__je_read(sm_prof_je *out);          /* writes epoch, reads stats.*; 0 or -1 */
int sm__je_read_allocated(uint64_t *allocated, uint64_t *resident); /* the same, two figures */
void sm__je_purge(void);                   /* every arena's dirty pages back to the kernel */
uint64_t sm__je_purge_above(uint64_t keep, int fresh); /* the same when more than keep bytes are
							  * dirty (fresh: the epoch was just written);
							  * returns the dirty bytes left */
int sm__je_reusable(void *p, uint64_t usable); /* a block that may take dirty pages */
void sm__je_reuse_check(void *q, uint64_t usable, uint64_t *dirty); /* purge when q took fresh pages */
int sm__je_thread_counter_ptrs(const uint64_t **allocated, const uint64_t **deallocated);
const char *sm__je_version(void);
int sm__je_thread_net(uint64_t *net);      /* calling thread: allocated - deallocated bytes */
int sm__je_thread_counters(uint64_t *allocated, uint64_t *deallocated); /* cumulative, this thread */
int sm__je_peak_read_reset(uint64_t *peak); /* thread.peak.read then thread.peak.reset */
/* Tracked arrays of SM__ARRAY_ALIGN bytes and more start on a SM__ARRAY_ALIGN boundary (2 MiB: a
 * transparent huge page), so that huge pages can back every whole 2 MiB of them; the usable size
 * (jemalloc's size class) is the same as unaligned. Not under `snapmem profile`, whose large
 * tracked arrays are glibc's, as the program's own large mallocs are (large.c). */
#define SM__ARRAY_ALIGN ((size_t)SM_MODEL_HUGE_PAGE_BYTES)
void *sm__mem_alloc(size_t n, int zero);   /* tracked arrays */
void *sm__plain_alloc(size_t n, int zero); /* the C library's, aligned as tracked arrays are */
void sm__mem_free(void *p);
uint64_t sm__mem_usable(void *p, uint64_t requested);
void *sm__raw_alloc(size_t n);             /* profiler bookkeeping: never sampled */
void *sm__raw_realloc(void *p, size_t n);
void sm__raw_free(void *p);
size_t sm__raw_usable(void *p);
/*
 * The gate before a thread's first call into jemalloc. jemalloc 5.3 sets a thread up on its first
 * call (an arena, the thread cache) and does not survive failing to map that memory: it leaves the
 * thread cache enabled but empty and crashes on the next allocation (tcache.c
 * tsd_tcache_enabled_data_init ignores the failure), or on a NULL arena in mallctl. So a thread
 * enters only when RLIMIT_AS / RLIMIT_DATA leave SM__JE_THREAD_NEED bytes of headroom; until then
 * every allocation of that thread fails with ENOMEM (and its frees are dropped), which callers
 * handle. 1 when the calling thread may call jemalloc. Allocates nothing.
 */
#define SM__JE_THREAD_NEED (UINT64_C(8) << 20)
int sm__je_thread_enter(void);               /* interpose.c */
/* The calling thread's sampling countdown drawn afresh with sm__interval (interpose.c). */
void sm__sample_thread_restart(void);
extern uint64_t sm__je_refused_limit, sm__je_refused_used; /* the last refusal's figures */
/* the allocator functions the interposition layer falls back to before dlsym has answered */
void *sm__je_bootstrap_alloc(size_t n, size_t align, int zero);
void sm__je_bootstrap_free(void *p);
/* jemalloc's own definition of a malloc-family function (NULL when jemalloc is not a shared object
 * of its own) and the same function written with mallocx/dallocx/rallocx/sallocx (never NULL for
 * the nine names interpose.c defines) */
void *sm__je_own(const char *name);
void *sm__je_explicit(const char *name);

/* A large event on the calling thread (large.c): its large net bytes went from `before` to
 * `after`; folded into the thread's peak (thread.peak.read/reset) so that sm__je_peak_read_reset
 * reports the highest jemalloc + large net bytes, large blocks however short-lived included. */
void sm__je_large_event(uint64_t before, uint64_t after);

/* ---- large.c: large blocks served by glibc under `snapmem profile` -------------------------- */
#define SM__LARGE_FILTER_BITS 15
#define SM__LARGE_DEFAULT ((size_t)SM_PROF_LARGE_MIN) /* glibc's initial M_MMAP_THRESHOLD */
extern int sm__large_on;                   /* 1 once sm__large_enable succeeded */
extern size_t sm__large_min;               /* requests of this size and more go to glibc */
extern unsigned char sm__large_filter[];   /* counting filter over sm__large_hash */
static inline uint32_t sm__large_hash(const void *p)
{
	return (uint32_t)((((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull) >> (64 - SM__LARGE_FILTER_BITS));
}
/* 0 when p is certainly not a large block (one load, no lock); 1: ask sm__large_lookup. */
static inline int sm__large_maybe(const void *p)
{
	return __builtin_expect(__atomic_load_n(&sm__large_on, __ATOMIC_RELAXED), 0) && p &&
	       __atomic_load_n(&sm__large_filter[sm__large_hash(p)], __ATOMIC_RELAXED) != 0;
}
/* Turns the large path on for requests of min_bytes and more (glibc's functions looked up in
 * libc.so.6 itself). 0, or -1 (left off) when they cannot be found. */
int sm__large_enable(size_t min_bytes);
/* A block from glibc (calloc when zero; memalign when align > 16), registered and counted. NULL with
 * errno ENOMEM when glibc or the registry fails. */
void *sm__large_alloc(size_t n, size_t align, int zero);
int sm__large_lookup(const void *p, size_t *usable); /* 1 when p is a live large block */
int sm__large_free(void *p);               /* 1 when p was a large block (now freed), else 0 */
/* glibc's realloc of large block p to n (n >= sm__large_min, or 0: p is freed, NULL returned);
 * NULL with p untouched on failure. */
void *sm__large_realloc(void *p, size_t n);
uint64_t sm__large_live(void);             /* usable bytes of the live large blocks */
void sm__large_thread(uint64_t *allocated, uint64_t *freed); /* this thread's, cumulative */
typedef struct sm__large_info {
	int on;
	size_t min_bytes;
	uint64_t blocks, bytes;          /* served so far: count, usable bytes */
	uint64_t live_blocks, live_bytes;
	size_t table_bytes;              /* the registry's own mapping */
} sm__large_info;
void sm__large_stats(sm__large_info *out);

/* ---- proc helpers (core.c) ------------------------------------------------------------------ */
/* A /proc/self file kept open and read with pread (no path walk, no open/close per reading). The
 * descriptor names the process that opened it, so a forked child (other pid) falls back to
 * open/read/close of the path. fd -1: always the path. */
typedef struct sm__procfd {
	int fd;
	int pid;
} sm__procfd;
void sm__procfd_open(sm__procfd *f, const char *path);
void sm__procfd_close(sm__procfd *f);
int sm__proc_status(sm__procfd *f, uint64_t *vm_rss, uint64_t *vm_hwm); /* f may be NULL */
uint64_t sm__proc_statm_rss(sm__procfd *f); /* allocation-free; f may be NULL */
/* The whole process's high-water marks (VmHWM, VmPeak) and page tables (VmPTE) now; 0 or -1. */
int sm__proc_peaks(uint64_t *vm_hwm, uint64_t *vm_peak, uint64_t *vm_pte);
/* The cgroup v2 memory.peak and memory.max of this process's cgroup: 1 each when read (max: 0
 * for "max", i.e. no limit, is reported as *have = 1, *v = UINT64_MAX), 0 when absent. */
void sm__proc_cgroup(uint64_t *peak, int *have_peak, uint64_t *max, int *have_max);
double sm__now(void);                     /* CLOCK_MONOTONIC seconds */

/* ---- sites.c ------------------------------------------------------------------------------- */
typedef struct sm__site {
	uint64_t hash;
	uint64_t bytes;       /* tracked: requested bytes allocated here; untracked: sampled estimate */
	uint64_t count;       /* tracked: arrays; untracked: samples */
	uint64_t live;        /* bytes live now (same units as bytes) */
	void **frames;
	uint16_t nframes;
	uint8_t tracked;
} sm__site;

typedef struct sm__sites {
	size_t max;            /* max_sites */
	int max_frames;
	size_t n;
	sm__site *v;
	void **pool;           /* max * max_frames */
	uint32_t *index;       /* open addressing, site index + 1, 0 = empty */
	size_t index_cap;
	size_t map_bytes;      /* one mmap holding all of the above */
	uint64_t unwind_failures, dropped;
} sm__sites;

typedef struct sm__top {
	int32_t site;
	uint64_t bytes;
} sm__top;

extern pthread_mutex_t sm__lock;

int sm__sites_init(sm__sites *s, size_t max_sites, int max_frames);
void sm__sites_release(sm__sites *s);
/* Captures the caller's stack, skipping `skip` innermost frames. Returns frames (0 on failure). */
int sm__capture(void **frames, int max, int skip);
/* Interns a stack (under sm__lock). Returns the site index or -1 when the table is full. */
int sm__site_intern(sm__sites *s, void *const *frames, int n, int tracked);
/* The current top sites by live bytes (under sm__lock). Returns the number filled. */
int sm__sites_top(const sm__sites *s, sm__top *out, int n);

/* Sampling layer state, read by interpose.c without the lock. */
extern int sm__sampling;              /* 1 while an active profiler samples */
extern int sm__filter_on;             /* 1 while the sampled-pointer table may hold entries */
extern uint64_t *sm__filter;          /* one bit per sm__ptr_hash value (32 KiB: stays in L1/L2) */
extern uint64_t sm__threshold, sm__interval;
/* Bumped (under the lock) at every sample recorded or forgotten, on any thread: a stage boundary
 * reuses the previous reading only while it has not moved. Read with __atomic_load_n. */
extern uint64_t sm__sample_gen;
#define SM__FILTER_BITS 18
static inline uint32_t sm__ptr_hash(const void *p)
{
	return (uint32_t)((((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull) >> (64 - SM__FILTER_BITS));
}
/* Records a sampled allocation that stands for `weight` bytes (any thread; takes the lock). */
void sm__sample_record(void *p, uint64_t size, uint64_t weight);
/* Forgets a sampled pointer being freed (any thread; takes the lock). */
void sm__sample_forget(void *p);
/* The same, under the lock already held (an adopted block stops counting as sampled). */
void sm__sample_forget_locked(void *p);
/* Thread-local reentrancy guard: nonzero while the profiler itself runs on this thread. */
int *sm__guard(void);

/* Activates/deactivates sampling for p (under no lock; takes it). 0, or -1 with *why set. */
int sm__sampling_start(sm_prof *p, const char **why);
void sm__sampling_stop(sm_prof *p);
uint64_t sm__sampled_live(void);          /* under the lock */
void sm__sampling_counts(uint64_t *samples, uint64_t *dropped, uint64_t *live, size_t *self_bytes);

/* ---- core.c, for sites.c: called under the lock when the untracked live estimate rises ------ */
void sm__prof_live_changed(sm_prof *p);
sm__sites *sm__prof_sites(sm_prof *p);
void sm__prof_close_all(sm_prof *p);      /* takes the lock */

/* ---- core.c: arrays the profiler does not own, and the preloaded profiler ------------------ */
/* Records memory the program allocated itself (e.g. a numpy array's buffer; `key` identifies it)
 * as a tracked array of `bytes` bytes in the current stage, until sm__prof_disown(key). Its
 * allocated size is jemalloc's size class of the request. 0, SM_EINVAL (key already tracked) or
 * SM_ENOMEM. */
int sm__prof_adopt(sm_prof *p, const char *name, const void *key, uint64_t bytes);
/* Ends an adopted array. 0, or SM_EINVAL when key is not an adopted live array. */
int sm__prof_disown(sm_prof *p, const void *key);

/*
 * libsnapmem-preload.so (src/preload/) exports SM__PRELOAD_SYMBOL, a function returning these
 * entry points while `snapmem profile` measures the process (NULL otherwise). Every profiler call
 * with a NULL sm_prof goes there when it exists, so a program's existing markers (or a Python
 * program's, through the same symbol and ctypes) reach the preloaded profiler. The entry points
 * run the preloaded library's own copy of the profiler (it is linked -Bsymbolic).
 */
#define SM__PRELOAD_SYMBOL "sm_preload_ops"
typedef struct sm__preload_ops {
	int version;                                   /* 1 */
	int (*stage_begin)(const char *id, int64_t instance);
	int (*stage_end)(void);
	void *(*alloc)(const char *name, uint64_t bytes, int zero);
	int (*release)(void *ptr);                     /* 1: it was the preloaded profiler's */
	int (*track)(const char *name, const void *key, uint64_t bytes);
	int (*untrack)(const void *key);
} sm__preload_ops;
const sm__preload_ops *sm__preload(void);       /* NULL when no preloaded profiler measures */

/* ---- Python lines (src/preload/pylines.c, snapmem profile --python-lines) ------------------ */
/* Set by the preload library; NULL otherwise. sm__py_frames rewrites a stack captured for a large
 * allocation or an adopted array: the `keep` innermost native frames, then the Python frames
 * (returns the new frame count, at most max; n when there are none); sm__py_name names the fake
 * frame addresses it puts there (1 when addr is one). Defined in sites.c. */
extern int (*sm__py_frames)(void **frames, int n, int max, int keep);
extern int (*sm__py_name)(void *addr, const char **function, const char **file, int *line);
void sm__pylines_enable(void);

/* ---- symbolize.c: file:line of frame addresses (libdw), once per document ------------------ */
typedef struct sm__symbolizer sm__symbolizer;
/* Opens the running process's modules; NULL when libdw cannot (the caller falls back to dladdr). */
sm__symbolizer *sm__sym_open(void);
/* Fills function and the return address's offset from it, file/line (NULL/0 when unknown) and a
 * JSON array of inlined frames (new reference, may be empty) for a return address. The strings stay
 * valid until sm__sym_close. */
void sm__sym_lookup(sm__symbolizer *s, void *addr, const char **function, uint64_t *offset,
		    const char **file, int *line, void **inlined_json);
void sm__sym_close(sm__symbolizer *s);

/* ---- timeline.c ---------------------------------------------------------------------------- */
typedef struct sm__timeline {
	pthread_t thread;
	int running;
	int stop;
	int no_stats;          /* set after an allocation failed: statm only (see core.c fail_alloc) */
	double period;         /* seconds between samples (doubled on thinning) */
	double t0;
	size_t cap, n;
	double *t;
	uint64_t *allocated, *resident;
	uint64_t depth_max[SM__TL_DEPTH];
	int open_depth;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t map_bytes;
	sm__procfd statm;      /* /proc/self/statm, owned by the sampler */
	uint64_t ticks;        /* samples taken (thinning keeps fewer) */
	double cpu_s;          /* the sampler thread's CPU time so far */
	/* The driving thread's jemalloc counters (thread.allocatedp/deallocatedp; NULL: every
	 * sample reads jemalloc's statistics afresh) and the last fresh reading: a sample reuses it
	 * while those counters and sm__sample_gen stand still, at most SM__TL_REUSE ticks running. */
	const uint64_t *own_alloc, *own_dealloc;
	int have_last;
	unsigned stale;
	uint64_t last_a, last_r, last_oa, last_od, last_gen, last_ll;
	uint64_t fresh_reads;  /* samples that read jemalloc's statistics */
} sm__timeline;

#define SM__TL_REUSE 8

/* own_alloc/own_dealloc: see sm__timeline (NULL, NULL: no reuse). */
int sm__timeline_start(sm__timeline *tl, double hz, size_t cap, double t0,
		       const uint64_t *own_alloc, const uint64_t *own_dealloc);
void sm__timeline_stop(sm__timeline *tl);
void sm__timeline_release(sm__timeline *tl); /* stops and unmaps */
/* Stage boundary: at begin resets depth d's running max; returns it at end. */
void sm__timeline_enter(sm__timeline *tl, int depth);
uint64_t sm__timeline_leave(sm__timeline *tl, int depth);

/* ---- the profiler (core.c), shared with json.c ---------------------------------------------- */
typedef struct sm__stage {
	char id[SM__ID_MAX];
	int64_t instance;
	int depth, parent, open, forced_closed;
	uint64_t req_begin, req_end, req_peak, tracked_alloc_peak;
	sm_prof_je je_begin, je_end;
	uint64_t alloc_peak;
	int64_t others_net, max_rel;
	uint64_t begin_net, tl_max;
	uint64_t rss_begin, rss_end, hwm_end;
	double t_begin, wall, cpu, cpu_begin;
	double part_s[SM_PROF_NPARTS];  /* sm_prof_time_add, and tracked frees */
	uint64_t snap_level;
	int ntop;
	sm__top top[SM__TOP];
} sm__stage;

typedef struct sm__array {
	char name[SM__ID_MAX];
	int stage;             /* index of the stage current at allocation, -1 */
	int freed_stage;       /* -1: live or freed outside any stage */
	int64_t instance;
	uint64_t requested, allocated;
	double t_alloc, t_free;
	int live;
	int site;
	int external;          /* adopted (sm__prof_adopt): the profiler does not own the memory */
	void *ptr;
} sm__array;

/* One reading of the process figures at a stage boundary (see boundary_read in core.c). */
typedef struct sm__reading {
	sm_prof_je je;
	uint64_t rss, hwm;
	uint64_t thr_alloc, thr_dealloc; /* the reading thread's jemalloc counters at the reading */
	uint64_t gen;                    /* sm__sample_gen at the reading */
	pthread_t thread;
	double t;                        /* sm__now() when the reading was complete */
	int valid;
} sm__reading;

typedef struct sm__meta {
	char *key;
	char *json;
} sm__meta;

struct sm_prof {
	sm_prof_options o;
	int je;                        /* jemalloc measured */
	const char *untracked_sampling;
	int sampling;                  /* this profiler drives the sampling layer */
	double t0, cpu0;
	sm_prof_je base;
	uint64_t base_rss, base_hwm;

	sm__stage *stages;
	size_t nstages, cap_stages;
	int *open;                     /* stack of open stage indices */
	size_t nopen, cap_open;
	uint64_t win_reset_net;        /* thread net bytes at the last thread.peak.reset */

	sm__array *arrays;
	size_t narrays, cap_arrays;
	uint32_t *amap;                /* ptr -> array index + 1, open addressing (live only) */
	size_t amap_cap, amap_used;

	uint64_t live_req, live_alloc;
	uint64_t dirty_kept;           /* dirty bytes jemalloc may hold for reuse (0: none kept) */

	char inject_name[SM__ID_MAX];
	int inject_named;
	uint64_t inject_left;

	struct { double t; int stage; int begin; } *marks;
	size_t nmarks, cap_marks;

	sm__meta *meta;
	size_t nmeta;

	int incomplete;
	char *incomplete_reason;

	sm__sites sites;
	sm__timeline tl;
	int tl_on;

	uint64_t *peak_live;           /* live bytes per site at the process's peak (max_sites) */
	size_t peak_n;                 /* sites in that snapshot */
	uint64_t peak_level, peak_snap_level; /* highest live estimate; the snapshot's level */
	double peak_t;                 /* when the live estimate was highest (seconds since t0) */
	double symbolize_s;            /* time the last document spent naming frames */
	const char *symbolizer;

	sm__procfd status;             /* /proc/self/status, kept open */
	sm__procfd statm;              /* /proc/self/statm, kept open (boundary readings' VmRSS) */
	int fast_hwm;                  /* VmHWM from getrusage (checked to agree at start) */
	int fast_pid;                  /* ... in this process (a forked child reads status again) */
	sm__reading last;              /* the last boundary reading, reused while fresh */
	uint64_t readings, reused;     /* boundary readings taken / reused (tests, docs) */
	uint64_t boundaries;           /* stage begins and ends recorded */
	double boundary_s;             /* seconds inside them, lock waits included (memory.json) */
	int alloc_failed;              /* a tracked allocation failed: jemalloc's stats not read again */
};

#endif
