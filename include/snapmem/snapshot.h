/*
 * Reading Gadget/AREPO/IllustrisTNG HDF5 snapshots and FoF/Subfind group catalogues.
 *
 * Paths are resolved as illustris_python does: BASE/snapdir_XXX/snap_XXX.N.hdf5, else
 * BASE/snapshot_XXX.N.hdf5 ... (see sm_snapshot_open_base); BASE/groups_XXX/fof_subhalo_tab_XXX.N.hdf5,
 * else BASE/groups_XXX/groups_XXX.N.hdf5; a single chunk file may also be given directly. XXX is the
 * snapshot number zero-padded to 3 digits.
 *
 * Every file is checked to be a regular file (non-blocking open, fstat) before HDF5 opens it, and
 * header values are range-checked where they are read (docs/DESIGN.md, "Input files"); chunk
 * headers are compared with chunk 0's when the chunks are scanned or read.
 *
 * Header facts come from the first chunk alone. Integer header attributes are accepted in any
 * integer width and signedness on disk (AREPO writes int32/uint32, Paicos int64); the 64-bit totals
 * are NumPart_Total | NumPart_Total_HighWord << 32, HighWord optional.
 *
 * Field reads put one field of one particle type, across all chunks, into a caller buffer in the
 * requested memory type, converted on the fly in bounded pieces (never a whole-field copy in the
 * file's type). A contiguous, unfiltered dataset of a standard type is read straight from its file
 * on the worker threads (pread; byte order and float64 -> float32 converted in the same pass, bit
 * for bit as HDF5 converts); anything else (chunked, compressed, unusual types, a dataset whose
 * bytes do not lie inside its file) goes through HDF5's own read. SNAPMEM_FASTREAD=0 forces
 * HDF5's read everywhere; the result is the same either way. Chunks without a PartTypeN group hold zero particles of type N. The per-chunk counts
 * (NumPart_ThisFile) must add up to the header total, else SM_EFORMAT.
 *
 * Every function returns 0 or a negative SM_E* code and fills err with one line naming the file,
 * the object and the fault. Nothing here prints: HDF5's own error stack printing is switched off by
 * sm_hdf5_quiet(), which every entry point calls.
 */
#ifndef SNAPMEM_SNAPSHOT_H
#define SNAPMEM_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "snapmem/error.h"

#define SM_NTYPES 6
#define SM_PATH_MAX 4096

/* Element types, in memory and on disk. */
typedef enum sm_dtype {
	SM_DTYPE_NONE = 0,
	SM_DTYPE_U8,
	SM_DTYPE_I32,
	SM_DTYPE_U32,
	SM_DTYPE_I64,
	SM_DTYPE_U64,
	SM_DTYPE_F32,
	SM_DTYPE_F64
} sm_dtype;

/* Their names, numpy's: the one spelling of an element type (sm_dtype_name, sm_dtype_from_name;
 * the model's --positions values are SM_DTYPE_NAME_F32 and SM_DTYPE_NAME_F64). */
#define SM_DTYPE_NAME_NONE "none"
#define SM_DTYPE_NAME_U8 "uint8"
#define SM_DTYPE_NAME_I32 "int32"
#define SM_DTYPE_NAME_U32 "uint32"
#define SM_DTYPE_NAME_I64 "int64"
#define SM_DTYPE_NAME_U64 "uint64"
#define SM_DTYPE_NAME_F32 "float32"
#define SM_DTYPE_NAME_F64 "float64"

size_t sm_dtype_size(sm_dtype t);        /* 0 for NONE */
const char *sm_dtype_name(sm_dtype t);   /* SM_DTYPE_NAME_*; "unknown" out of range */
int sm_dtype_from_name(const char *name, sm_dtype *out); /* 0 or SM_EINVAL */

/* Facts from a snapshot header (first chunk). */
typedef struct sm_header {
	uint64_t npart_total[SM_NTYPES];    /* NumPart_Total | HighWord << 32 */
	uint64_t npart_file0[SM_NTYPES];    /* NumPart_ThisFile of the chunk read */
	double mass_table[SM_NTYPES];       /* MassTable */
	double box_size;                    /* BoxSize (code length units, ckpc/h for TNG) */
	double hubble_param;                /* HubbleParam (h) */
	double omega0, omega_baryon, omega_lambda;
	double redshift, time;
	int64_t num_files;                  /* NumFilesPerSnapshot */
	int has_highword;                   /* NumPart_Total_HighWord was present */
	int has_units;                      /* the three Unit* attributes were present */
	double unit_length_cm;              /* UnitLength_in_cm (3.085678e21 when absent) */
	double unit_mass_g;                 /* UnitMass_in_g (1.989e43 when absent) */
	double unit_velocity_cm_s;          /* UnitVelocity_in_cm_per_s (1e5 when absent) */
} sm_header;

/* Optional caller-owned HDF5 type-conversion buffer (H5Pset_buffer), so that a profiled caller can
 * track it as a named array. NULL or size 0: HDF5's default (1 MiB, allocated by HDF5). */
typedef struct sm_io_buffer {
	void *tconv;
	size_t size;
} sm_io_buffer;

/* A snapshot: its chunk files and header. */
typedef struct sm_snapshot {
	char base[SM_PATH_MAX];      /* base path, or "" for a single file */
	int snap;                    /* snapshot number, or -1 for a single file */
	char pattern[SM_PATH_MAX];   /* printf pattern of chunk paths with one %lld, or a literal path */
	int64_t nfiles;              /* chunk files (1 for a single file) */
	sm_header header;
	uint64_t *chunk_counts;      /* [nfiles * SM_NTYPES] NumPart_ThisFile, after sm_snapshot_scan */
	void *priv;                  /* reader state (an open chunk kept between range reads) */
} sm_snapshot;

/*
 * Opens a snapshot by illustris_python's layout. Tries, in order:
 *   BASE/snapdir_XXX/snap_XXX.0.hdf5, BASE/snapdir_XXX/snapshot_XXX.0.hdf5,
 *   BASE/snap_XXX.0.hdf5, BASE/snapshot_XXX.0.hdf5, then the single files BASE/snap_XXX.hdf5 and
 *   BASE/snapshot_XXX.hdf5;
 * reads the header of the first chunk only. SM_ENOTFOUND when none exists.
 */
int sm_snapshot_open_base(sm_snapshot *s, const char *base, int snap, sm_error *err);

/* Opens one chunk file given directly (nfiles = 1, whatever NumFilesPerSnapshot says). */
int sm_snapshot_open_file(sm_snapshot *s, const char *path, sm_error *err);

/* Path of chunk i into buf. 0 or SM_EINVAL (i out of range) / SM_EOVERFLOW (buf too small). */
int sm_snapshot_chunk_path(const sm_snapshot *s, int64_t i, char *buf, size_t len, sm_error *err);

/*
 * Reads NumPart_ThisFile of every chunk into s->chunk_counts and checks that they add up to the
 * header totals (SM_EFORMAT naming the type, the sum and the total) and that every chunk exists
 * (SM_ENOTFOUND naming the missing file). Opens each chunk's header once. Idempotent.
 */
int sm_snapshot_scan(sm_snapshot *s, sm_error *err);

/* Closes files and frees what open/scan allocated. Accepts NULL. */
void sm_snapshot_release(sm_snapshot *s);

/* Shape and type of a field on disk, from the first chunk that holds particles of ptype. */
typedef struct sm_field_info {
	sm_dtype disk_type;
	int ncomp;            /* 1 for [N], k for [N,k] */
	uint64_t count;       /* total elements (particles) = header total of ptype */
	uint64_t bytes;       /* count * ncomp * size of disk_type */
} sm_field_info;

int sm_snapshot_field_info(sm_snapshot *s, int ptype, const char *field, sm_field_info *out,
			   sm_error *err);

/*
 * Reads field `field` of PartType`ptype` for global particle indices [first, first + count) (the
 * order of the chunks, then the order inside each) into buf, converted to memtype with ncomp
 * components per particle (ncomp must match the file: SM_EFORMAT otherwise, e.g. Coordinates of the
 * wrong rank, or an integer type read into a float). Calls sm_snapshot_scan when needed. buf holds
 * count * ncomp * sm_dtype_size(memtype) bytes. iob may be NULL.
 */
int sm_snapshot_read_range(sm_snapshot *s, int ptype, const char *field, sm_dtype memtype,
			   int ncomp, uint64_t first, uint64_t count, void *buf,
			   const sm_io_buffer *iob, sm_error *err);

/*
 * sm_snapshot_read_range, with every value checked in the same pass: as stored and as converted to
 * memtype it must lie in [lo, hi) (NaN never does). *bad receives the first particle (counted from
 * first) holding a value outside, or count when there is none; the read stops there (buf is
 * filled up to that particle only). float64 read as float32 with iob goes through iob as plain
 * float64 blocks narrowed by the reader (the C cast; +-inf beyond FLT_MAX), whatever the path.
 */
int sm_snapshot_read_range_checked(sm_snapshot *s, int ptype, const char *field,
				   sm_dtype memtype, int ncomp, uint64_t first, uint64_t count,
				   void *buf, const sm_io_buffer *iob, double lo, double hi,
				   uint64_t *bad, sm_error *err);

/* The whole field: sm_snapshot_read_range(s, ptype, field, memtype, ncomp, 0, total, buf, ...). */
int sm_snapshot_read_field(sm_snapshot *s, int ptype, const char *field, sm_dtype memtype,
			   int ncomp, void *buf, const sm_io_buffer *iob, sm_error *err);

/*
 * Names of the datasets in /PartType<ptype> of the first chunk holding particles of that type, in
 * name order: *names is a malloc'd array of *n malloc'd strings (sm_field_names_free). *n = 0 when
 * there are no such particles or the chunk has no PartType group (a headers-only snapshot).
 */
int sm_snapshot_field_names(sm_snapshot *s, int ptype, char ***names, size_t *n, sm_error *err);
void sm_field_names_free(char **names, size_t n);

/*
 * Checks /PartType<ptype>/<field> in every chunk holding particles of that type: present, ncomp
 * components (0: whatever the first chunk has), as many rows as NumPart_ThisFile, the same on-disk
 * type everywhere. Calls sm_snapshot_scan. SM_ENOTFOUND / SM_EFORMAT naming the chunk file.
 */
int sm_snapshot_check_field(sm_snapshot *s, int ptype, const char *field, int ncomp,
			    sm_error *err);

/* A field for sm_snapshot_check_fields: its name and components (0: whatever the first chunk
 * has). */
typedef struct sm_field_check {
	const char *name;
	int ncomp;
} sm_field_check;

#define SM_CHECK_FIELDS_MAX 16

/*
 * sm_snapshot_check_field for fields[0..n) (n <= SM_CHECK_FIELDS_MAX), with each chunk file
 * opened once for all of them: the same result and the same error as checking them one after
 * the other and stopping at the first that fails.
 */
int sm_snapshot_check_fields(sm_snapshot *s, int ptype, const sm_field_check *fields, size_t n,
			     sm_error *err);

/* A FoF/Subfind group catalogue. */
typedef struct sm_catalog {
	char base[SM_PATH_MAX];
	int snap;
	char pattern[SM_PATH_MAX];
	int64_t nfiles;              /* NumFiles */
	uint64_t ngroups_total;      /* Ngroups_Total, any integer width */
	uint64_t nsubgroups_total;   /* Nsubgroups_Total, else Nsubhalos_Total (0 when absent) */
	int has_nsubgroups_total;    /* 1 when the first chunk's header holds either */
	double hubble_param;         /* from the catalogue header when present, else 0 */
	void *priv;
	/* Groups that sm_catalog_read_group_field delivers: ngroups_total when opened by base path
	 * (or a single-file catalogue), Ngroups_ThisFile when one chunk of a multi-file catalogue
	 * was opened with sm_catalog_open_file (only that chunk's groups are read). */
	uint64_t ngroups_read;
	int64_t num_files_header;    /* NumFiles as the header says (nfiles is 1 for a single file) */
	uint64_t ngroups_file0;      /* Ngroups_ThisFile of the first (or only) chunk */
	uint64_t ngroups_chunk_max;  /* the largest chunk's Ngroups_ThisFile, once the chunk
				      * headers were scanned (reading group fields scans them too) */
	double box_size;             /* BoxSize of the catalogue header (0 when absent) */
	double redshift;             /* Redshift of the catalogue header (0 when absent) */
	int has_box_size, has_redshift;
} sm_catalog;

/* BASE/groups_XXX/fof_subhalo_tab_XXX.0.hdf5, else BASE/groups_XXX/groups_XXX.0.hdf5. */
int sm_catalog_open_base(sm_catalog *c, const char *base, int snap, sm_error *err);
int sm_catalog_open_file(sm_catalog *c, const char *path, sm_error *err);
void sm_catalog_release(sm_catalog *c);

/*
 * One chunk file of catalogue c, opened alone (sm_catalog_open_file) from path, against c's chunk
 * 0: Ngroups_Total and NumFiles exactly, BoxSize, Redshift and HubbleParam to a relative 1e-6 (the
 * check every chunk read through c gets), else SM_EFORMAT naming both files.
 */
int sm_catalog_match_chunk(const sm_catalog *c, const sm_catalog *chunk, const char *path,
			   sm_error *err);

/*
 * The catalogue's header against its snapshot's: BoxSize and Redshift (when the catalogue has
 * them) and HubbleParam (when both give one) must agree to a relative 1e-6, else SM_EFORMAT
 * naming both chunk-0 files ("the catalogue belongs to another snapshot").
 */
int sm_catalog_match_snapshot(const sm_catalog *c, const sm_snapshot *s, sm_error *err);

/*
 * The path of the catalogue chunk file holding group gi into buf (opens the chunk headers in
 * turn; for messages). When it cannot be found (a chunk unreadable, gi beyond the chunks), buf
 * gets the catalogue's name. Never fails.
 */
void sm_catalog_group_file(const sm_catalog *c, uint64_t gi, char *buf, size_t len);

/*
 * The catalogue values of selected halo i (group gi) that every user of the selection relies on:
 * Group_M_Crit200 NaN (unknown, ranked last) or finite and >= 0; Group_R_Crit200 positive, finite
 * and at most box. SM_EFORMAT "'FILE': group G (selected halo I) has ..." naming the chunk file.
 */
int sm_catalog_check_halo(const sm_catalog *c, uint64_t gi, uint64_t i, double box, double m200,
			  double r200, sm_error *err);

/*
 * Reads /Group/<field> across all chunks (one chunk alone: see ngroups_read) (skipping chunks with Ngroups_ThisFile = 0 or a /Group
 * without datasets) into buf: ngroups_total * ncomp elements of memtype. The per-chunk group counts
 * must add up to Ngroups_Total (SM_EFORMAT otherwise).
 */
int sm_catalog_read_group_field(sm_catalog *c, const char *field, sm_dtype memtype, int ncomp,
				void *buf, sm_error *err);

/* Several /Group fields in one pass over the chunk files (each file opened once). */
typedef struct sm_catalog_field {
	const char *name;
	sm_dtype memtype;
	int ncomp;
	void *buf;             /* ngroups_total * ncomp elements of memtype */
} sm_catalog_field;

int sm_catalog_read_group_fields(sm_catalog *c, const sm_catalog_field *fields, size_t nfields,
				 sm_error *err);

/*
 * Checks, without blocking, that path is a regular file that can be opened for reading, before
 * anything (HDF5, a JSON reader) opens it by name: a FIFO, a directory, a device or a socket is
 * SM_EFORMAT "'PATH': not a regular file (a FIFO)", a missing file SM_ENOTFOUND, an unreadable one
 * SM_EIO. Every snapshot and catalogue file goes through it; so should any other input.
 */
int sm_file_check_regular(const char *path, sm_error *err);

/* Turns off HDF5's automatic error printing (idempotent, thread-compatible). */
void sm_hdf5_quiet(void);

/* Turns off HDF5's internal free lists (H5set_free_list_limits to 0) and returns what they hold,
 * so that freed HDF5 memory goes back to the allocator at once; measured runs call it first. */
void sm_hdf5_lean(void);

#endif
