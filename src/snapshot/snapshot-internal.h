/*
 * Shared-internal helpers of src/snapshot/ (names sm__*): HDF5 type mapping, attribute readers
 * that accept any integer width, and file opening with one-line errors. Not installed; only the
 * files of this directory include it.
 */
#ifndef SNAPMEM_SNAPSHOT_INTERNAL_H
#define SNAPMEM_SNAPSHOT_INTERNAL_H

#include <hdf5.h>
#include <stdint.h>

#include "snapmem/snapshot.h"
#include "snapmem/units.h"
#include "snapshot/direct.h"

/* Native HDF5 memory type of t (not to be closed), or -1 for SM_DTYPE_NONE. */
hid_t sm__h5_memtype(sm_dtype t);

/* The sm_dtype of an on-disk HDF5 type (integer or float of a known width), else NONE. */
sm_dtype sm__dtype_of_h5(hid_t type);

/*
 * Opens path read-only. SM_ENOTFOUND when the file does not exist, SM_EFORMAT when it is not an
 * HDF5 file (or is truncated). Returns 0 and *out, or a negative code.
 */
int sm__h5_open(const char *path, hid_t *out, sm_error *err);

/* 1 when the link obj (e.g. "/PartType0" or "/Header") exists in loc, else 0. */
int sm__h5_exists(hid_t loc, const char *name);

/*
 * Reads integer attribute `name` of object `obj` (path inside file, for messages) into out[n]
 * (n = 1: scalar or [1]; else a 1-D array of exactly n elements). Any integer width and signedness;
 * negative values, a non-integer class and a wrong shape are SM_EFORMAT naming file and attribute.
 * When the attribute is absent: SM_ENOTFOUND if required (message set), else returns 1 and leaves
 * out untouched (err untouched).
 */
int sm__attr_u64(hid_t loc, const char *file, const char *obj, const char *name, uint64_t *out,
		 int n, int required, sm_error *err);

/* Same for a floating (or integer) scalar read as double. */
int sm__attr_double(hid_t loc, const char *file, const char *obj, const char *name, double *out,
		    int required, sm_error *err);

/* Same for a floating array of exactly n elements (n = 1: scalar or [1]). */
int sm__attr_doubles(hid_t loc, const char *file, const char *obj, const char *name, double *out,
		     int n, int required, sm_error *err);

/* ---- the fast path (fastread.c) ---- */

/* 0 when SNAPMEM_FASTREAD=0 forces HDF5's own read, else 1. */
int sm__fast_enabled(void);

/* 1 on a big-endian host, else 0. */
int sm__host_big_endian(void);

/* Fills x for dataset dset of file (x->ok = 0 when any precondition of the fast path fails, or it
 * is off). Never fails otherwise; touches no error state. */
void sm__extent_probe(hid_t file, hid_t dset, sm__extent *x);

/*
 * Reads elements [e0, e0 + ne) of the dataset x describes into out as memtype, on the worker
 * threads; conversions go through scratch (scratch_bytes, split over the threads). With bounds b,
 * *bad receives the first element outside them (as read or as converted), else ne. Returns 1
 * (nothing done) when the conversion is not one it does exactly as HDF5 would, or scratch is
 * missing for it; 0 when done; SM_EIO when a read failed (*errnum: errno, or -1 for end of
 * file), err left to the caller, which words it as for HDF5's failed read.
 */
int sm__fast_read(const sm__extent *x, sm_dtype memtype, uint64_t e0, uint64_t ne, void *out,
		  void *scratch, size_t scratch_bytes, const sm__bounds *b, uint64_t *bad,
		  int *errnum);

/* float64 -> float32 as HDF5's hardware conversion does it (+-inf beyond FLT_MAX); with b, stops
 * at and returns the first value outside b as read or narrowed, else returns n. */
uint64_t sm__narrow_f64(const double *in, float *out, uint64_t n, const sm__bounds *b);
/* -1 (the default): sm__narrow_f64 takes four values at a time where the CPU has AVX; 0: never
 * (the tests' switch to the SSE2 loop). */
extern int sm__narrow_avx;

/* The first of n values of type t (as double) outside b, or n. */
uint64_t sm__first_outside_any(const void *out, sm_dtype t, uint64_t n, const sm__bounds *b);

/* Reader state kept in sm_snapshot.priv: the last chunk file and dataset opened by a range read. */
/* A dataset of the open chunk file checked and found readable by the fast path: a field read
 * again (the distributed run reads four fields a block) needs no HDF5 open. */
#define SM__KEPT_EXTENTS 8
typedef struct sm__kept_extent {
	int ptype, ncomp;      /* as checked: open_field's arguments */
	uint64_t rows;
	sm_dtype memtype, disk;
	char field[64];
	sm__extent ext;        /* ok; its fd is the open chunk file's */
} sm__kept_extent;

typedef struct sm__snap_priv {
	int64_t chunk;         /* chunk of file, -1 when none is open */
	hid_t file;
	int ptype;             /* the current dataset's type and name, valid when field[0] != 0 */
	char field[256];
	hid_t dset;            /* the current dataset, or -1 when ext alone serves it */
	sm_dtype disk;         /* the dataset's element type */
	sm__extent ext;        /* where its bytes lie, for the fast path */
	sm__kept_extent kept[SM__KEPT_EXTENTS]; /* fields of chunk `chunk` checked before */
	int nkept;
	struct sm__meta_chunk *meta; /* chunk `chunk` through the metadata reader (field.c) */
	int meta_open;         /* meta->m is open on chunk `chunk` */
	int meta_ptype;        /* meta->grp is /PartType<meta_ptype>, or -1 */
} sm__snap_priv;

/* The priv state of s, allocated on first use (NULL when out of memory). */
sm__snap_priv *sm__snap_priv_get(sm_snapshot *s);

/* Closes the kept chunk file and dataset, if any. */
void sm__snap_close_kept(sm_snapshot *s);

/* The name of s for messages: the base path, or the single file. */
const char *sm__snap_name(const sm_snapshot *s);

/* Reads the /Header of an open snapshot chunk file into h, range-checking its values. */
int sm__read_snap_header(hid_t f, const char *path, sm_header *h, sm_error *err);

/* SM_EFORMAT naming both files when the header h of path disagrees with h0 of path0 (counts and
 * file count exactly, BoxSize, HubbleParam, Redshift, Time and units to a relative 1e-6). */
int sm__snap_header_match(const sm_header *h0, const char *path0, const sm_header *h,
			  const char *path, sm_error *err);

/*
 * Builds a chunk pattern: base (each '%' doubled) + "/" + tail, where tail is already a format
 * with at most one %lld. 0 or SM_EOVERFLOW.
 */
int sm__pattern_make(char *out, size_t len, const char *base, const char *tail);

/* Chunk i's path from a pattern. 0 or SM_EOVERFLOW. */
int sm__pattern_path(const char *pattern, int64_t i, char *buf, size_t len);

/*
 * The illustris layout search shared by snapshots and catalogues: checks base and snap, copies base
 * into base_out, and tries each tail (a format taking snap twice, then one %%lld) until chunk 0
 * exists, leaving its pattern in pattern. Returns the index of the tail found, ntails when none
 * exists (err untouched: the caller names what it looked for), or a negative SM_E* code.
 */
int sm__layout_find(const char *base, int snap, const char *const *tails, size_t ntails,
		    char *base_out, size_t base_len, char *pattern, size_t pattern_len,
		    sm_error *err);

/*
 * Opens every catalogue chunk's header once and checks that Ngroups_ThisFile adds up to
 * Ngroups_Total (SM_EFORMAT; a missing chunk gives SM_ENOTFOUND naming it), so that nobody sizes a
 * buffer by a total the files do not hold. One chunk of many given directly: nothing to check.
 */
int sm__catalog_scan(sm_catalog *c, sm_error *err);

/*
 * sm_catalog_read_group_fields without HDF5 (h5meta.c, the files on the worker threads), tried
 * first by it: 0 when every field of every chunk was read and every check the HDF5 loop makes
 * passed; nonzero when any chunk or check is not vouched for (or SNAPMEM_FASTREAD=0), and then c
 * is as it was and the buffers hold nothing of use. Float fields only (read as float32/float64).
 */
int sm__catalog_read_fast(sm_catalog *c, const sm_catalog_field *fields, size_t nfields);

/* ---- the metadata reader (h5meta.c): catalogue chunks and snapshot headers without HDF5 ---- */

/* Every function answers 0, or nonzero when it does not vouch for the answer (the caller then
 * goes through HDF5); none sets an error, allocates or keeps global state. */
#define SM__H5M_BLOCK 16384u
#define SM__H5M_MSGS 192u

typedef struct sm__h5m {
	int fd;
	uint64_t size;          /* the file's size */
	uint64_t eoa;           /* end of allocation (superblock), <= size: no read reaches past it */
	uint64_t root;          /* the root group's object header */
	unsigned leaf_k, node_k; /* symbol table node and group B-tree ranks */
	uint64_t blk_addr[2];
	size_t blk_len[2];
	unsigned blk_last;
	unsigned char blk[2][SM__H5M_BLOCK];
} sm__h5m;

/* One object header's messages (continuations followed), copied. */
typedef struct sm__h5m_obj {
	unsigned nmsg;
	struct {
		uint16_t type;
		uint8_t flags;
		uint32_t off, len; /* in buf */
	} msg[SM__H5M_MSGS];
	uint32_t used;
	unsigned char buf[16384];
} sm__h5m_obj;

/* A chunk file, a group and an object of it, as the metadata reader holds them (the
 * metadata reader's working memory: ~70 KiB, malloc'd). */
typedef struct sm__meta_chunk {
	sm__h5m m;
	sm__h5m_obj grp, obj;
} sm__meta_chunk;

enum { SM__H5M_INT = 1, SM__H5M_FLOAT = 2 };

typedef struct sm__h5m_type {
	int cls;       /* SM__H5M_INT (no padding bits) or SM__H5M_FLOAT (IEEE binary32/64) */
	uint32_t size; /* bytes */
	int sign;      /* integers: two's complement */
	int big;       /* big-endian */
} sm__h5m_type;

typedef struct sm__h5m_attr {
	sm__h5m_type type;
	unsigned rank; /* 0: scalar */
	uint64_t dims[2], npts;
	unsigned char data[64];
} sm__h5m_attr;

typedef struct sm__h5m_dset {
	sm__h5m_type type;
	unsigned rank;
	uint64_t dims[2], npts;
	uint64_t addr, bytes; /* contiguous, allocated, inside EOA and the file */
} sm__h5m_dset;

/* Opens path (a regular file, a superblock 0 or 1 at byte 0 with 8-byte addresses, no driver
 * block, EOA inside the file) under a shared lock, as HDF5 would. Closed on failure. */
int sm__h5m_open(sm__h5m *m, const char *path);
/* The same for path relative to the directory dirfd (openat; AT_FDCWD: as sm__h5m_open). */
int sm__h5m_open_at(sm__h5m *m, int dirfd, const char *path);
void sm__h5m_close(sm__h5m *m);

/* The version-1 object header at addr. */
int sm__h5m_object(sm__h5m *m, uint64_t addr, sm__h5m_obj *o);

/* The object header address of the hard link name (no '/') in the symbol-table group. */
int sm__h5m_lookup(sm__h5m *m, const sm__h5m_obj *group, const char *name, uint64_t *oh);

/* Attribute name of the object: 0 found (at most 2 dimensions, 64 bytes), 1 absent (the object has
 * no dense attribute storage), -1 not vouched for. */
int sm__h5m_find_attr(const sm__h5m_obj *o, const char *name, sm__h5m_attr *a);

/* Element i of an integer attribute (its bits, and whether it is negative), or as a double exactly
 * as H5Aread converts it (not vouched for where that conversion could round). */
int sm__h5m_value_u64(const sm__h5m_attr *a, uint64_t i, int *negative, uint64_t *v);
int sm__h5m_value_double(const sm__h5m_attr *a, uint64_t i, double *v);

/* Attribute name of o as n (at most SM_NTYPES) non-negative integers of any width, or as n
 * numbers read as doubles (a scalar or [n]; [1] or a scalar for n = 1): 0 read into out, 1
 * absent, -1 not vouched for (HDF5 then decides, and words any error). */
int sm__h5m_u64s(const sm__h5m_obj *o, const char *name, uint64_t *out, int n);
int sm__h5m_doubles(const sm__h5m_obj *o, const char *name, double *out, int n);

/* A dataset's type, shape and bytes: contiguous (layout version 3), allocated, unfiltered, not
 * external, storage = elements x element size, inside EOA and the file. */
int sm__h5m_dataset(sm__h5m *m, const sm__h5m_obj *o, sm__h5m_dset *d);

#endif
