/*
 * Output files and run directories: the one implementation every writer of snapmem uses
 * (src/common/outfile.c, src/common/rundir.c; docs/PIPELINE.md "Run directories").
 *
 * A file is written under a hidden temporary name in its own directory
 * (DIR/.NAME.snapmem-tmp.PID.RANDOM), synced, and renamed over the target; a failure removes the
 * temporary and leaves the target as it was. Only regular files are replaced: a target that is a
 * symbolic link, a directory, a device, a FIFO or a socket is refused (SM_EEXIST, one line naming
 * the path and what it is), as is a target that is one of the command's own inputs (same st_dev
 * and st_ino). Temporaries of dead processes beside the target are removed.
 *
 * A run directory (`snapmem run --out DIR`) is written as a whole: DIR is locked (flock on the
 * directory itself, so that a concurrent run into DIR fails at once naming the holder), the run's
 * files are written into a staging directory DIR/.snapmem-staging.PID.RUNID and moved into DIR at
 * the end by per-file renames under the lock (with the previous files kept as hard links until
 * every rename succeeded, so that an error puts them back), and every file carries one run id.
 *
 * Every function returns 0 or a negative SM_E* code with err filled; nothing here prints.
 */
#ifndef SNAPMEM_OUTFILE_H
#define SNAPMEM_OUTFILE_H

#include <stddef.h>

#include "snapmem/error.h"

/*
 * An input of the command, which an output must never replace. suffix NULL: path is a file (any
 * output with its st_dev/st_ino is refused). Otherwise path is a directory and every existing file
 * directly in it whose name ends in suffix counts as an input (a snapshot's chunk directory).
 */
typedef struct sm_out_input {
	const char *path;
	const char *suffix;
} sm_out_input;

/*
 * Checks that path may be written: absent, or a regular file that is none of inputs[0..n).
 * SM_EEXIST with "'PATH': is a FIFO, not a regular file: refusing to replace it" (or "a symbolic
 * link", "a directory", "a character device", "a block device", "a socket"), or "'PATH': is an
 * input of this command ('INPUT'): refusing to overwrite it"; SM_EIO when it cannot be examined.
 */
int sm_out_check(const char *path, const sm_out_input *inputs, size_t ninputs, sm_error *err);

/* A file being written under its temporary name. */
typedef struct sm_outfile {
	char *path;     /* the target */
	char *tmp;      /* the temporary name (same directory) */
	int fd;         /* open on tmp for writing, or -1 once closed */
	int nosync;     /* set by the caller after open: no fsync at commit (data made again
			 * easily, e.g. the mock's chunk files) */
	int sync_later; /* set by the caller after open: the commit only starts the data's
			 * writeback (sync_file_range) and does not sync the directory; the
			 * caller syncs the file before anyone can find it by its final name
			 * (sm_rundir_commit does, for the files of its staging directory) */
} sm_outfile;

/*
 * Checks path (sm_out_check), removes dead processes' temporaries of path, and creates the
 * temporary (mode 0666 less the umask), open in o->fd. A writer that cannot use the descriptor
 * (HDF5) creates o->tmp itself over the empty file. On failure o holds nothing to release.
 */
int sm_outfile_open(sm_outfile *o, const char *path, const sm_out_input *inputs, size_t ninputs,
		    sm_error *err);

/*
 * Syncs the temporary's data, closes it, checks the target again (still absent or a regular
 * file; when absent it is created with RENAME_NOREPLACE), renames the temporary over the target
 * and syncs the directory. o is released either way; on failure the temporary is removed.
 */
int sm_outfile_commit(sm_outfile *o, sm_error *err);

/* Closes and removes the temporary and releases o. Accepts a zeroed or already released o. */
void sm_outfile_abort(sm_outfile *o);

/* The whole cycle for len bytes of data: open, write, commit. */
int sm_out_write(const char *path, const void *data, size_t len, const sm_out_input *inputs,
		 size_t ninputs, sm_error *err);

/*
 * The process id encoded in name when it is a temporary of this module
 * (".NAME.snapmem-tmp.PID.RANDOM") or a run's staging directory (".snapmem-staging.PID.RUNID"),
 * else 0.
 */
long sm_out_temp_pid(const char *name);

/* ---- run directories ------------------------------------------------------------------------- */

#define SM_RUN_ID_LEN 32          /* hex digits of the 128-bit random run id */
#define SM_RUN_STARTED_LEN 24     /* "2026-12-01T03:12:53Z" and its NUL */

/* The files a run writes into its directory, in commit order; NULL-terminated.
 * profiles.hdf5, estimate.json, memory.json, report.md, report.html, memory.interrupted.json. */
extern const char *const sm_rundir_files[];

typedef struct sm_rundir {
	char *path;                   /* the run directory (--out) */
	char *stage;                  /* the staging directory inside it */
	char id[SM_RUN_ID_LEN + 1];   /* this run's id */
	char started[SM_RUN_STARTED_LEN];
	int fd;                       /* the locked directory, -1 */
	int lock_errno;               /* 0, or why the directory could not be locked (ENOLCK...):
				       * the run goes on unlocked and the caller says so */
	int created;                  /* this run created the directory */
	int had_run;                  /* the directory held files of an earlier run */
	int committed;                /* something was moved into the directory */
} sm_rundir;

/* A new run id (128 random bits as hex, getrandom) and the start time (UTC, ISO 8601). */
int sm_run_id_new(char id[SM_RUN_ID_LEN + 1], char started[SM_RUN_STARTED_LEN], sm_error *err);

/*
 * Opens the run directory path for a run: creates it when absent, locks it (another run holding
 * it: SM_EEXIST "'PATH': run directory is in use by another run (process PID 'snapmem'); ..."),
 * removes the staging directories and temporaries that dead runs left, refuses a directory that
 * holds anything else unless force (SM_EEXIST "... exists and is not empty ..."), checks that each
 * of sm_rundir_files is absent or a regular file, draws the run id and creates the staging
 * directory. On failure nothing is left that was not there before.
 */
int sm_rundir_open(sm_rundir *d, const char *path, int force, sm_error *err);

/* STAGE/name into buf; NULL when it does not fit. */
char *sm_rundir_staged(const sm_rundir *d, const char *name, char *buf, size_t len);

/*
 * Moves names[0..n) from the staging directory into the run directory. Every staged file must be
 * whole and every target absent or a regular file, checked before the first rename; every staged
 * file is synced (fsync) before the first rename. whole = 1:
 * the files of sm_rundir_files not in names are removed from the directory afterwards (what an
 * earlier run left), so that the directory holds this run's files only. A failing rename puts back
 * the files already replaced. 0 or SM_E*.
 */
int sm_rundir_commit(sm_rundir *d, const char *const *names, size_t n, int whole, sm_error *err);

/*
 * Ends the run's hold on the directory: removes the staging directory and what is left in it,
 * the directory itself when this run created it and committed nothing, and releases the lock.
 * Accepts a zeroed d.
 */
void sm_rundir_close(sm_rundir *d);

#endif
