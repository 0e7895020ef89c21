/*
 * Output files: the one temporary-name-and-rename writer of snapmem (include/snapmem/outfile.h),
 * used by estimate.json, memory.json, the reports, profiles.hdf5, the mock's chunk files and every
 * `-o FILE`.
 *
 * What it guarantees: the target is replaced only when it is absent or a regular file that is not
 * one of the command's inputs (a symbolic link, a device, a FIFO, a socket or a directory is
 * refused: renaming over them would destroy a device node or a pipe someone reads, or write
 * through a link into a place nobody named); the data reaches the disk before the rename (fsync)
 * and the rename before success is reported (fsync of the directory); a failure removes the
 * temporary and leaves the target untouched. A caller that makes the file visible somewhere else
 * afterwards (a run's staging directory, moved in by sm_rundir_commit) may ask for sync_later:
 * the writeback is started at commit and waited for by that caller, before anything is visible. The check is made when the temporary is created and
 * again just before the rename; when the target was absent the rename is RENAME_NOREPLACE, so that
 * nothing that appeared in between is replaced. Between that last check of an existing regular
 * file and the rename a window remains, open only to someone who can write the directory.
 *
 * Temporaries are hidden and name their process (".NAME.snapmem-tmp.PID.RANDOM"); one whose
 * process is gone (kill(PID, 0) says ESRCH) is removed when the same target is written again.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapmem/outfile.h"

#define TMP_TAG ".snapmem-tmp."
#define STAGE_TAG ".snapmem-staging."

/* What a non-regular file is, for the refusal. */
static const char *kind(mode_t m)
{
	if (S_ISLNK(m))
		return "a symbolic link";
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISBLK(m))
		return "a block device";
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISSOCK(m))
		return "a socket";
	return "not a regular file";
}

/* dirname and basename of path, malloc'd ("." for a bare name). */
static int split(const char *path, char **dir, char **base)
{
	const char *s = strrchr(path, '/');

	*dir = s == NULL ? strdup(".") : s == path ? strdup("/") : strndup(path, (size_t)(s - path));
	*base = strdup(s == NULL ? path : s + 1);
	if (*dir == NULL || *base == NULL) {
		free(*dir);
		free(*base);
		*dir = *base = NULL;
		return SM_ENOMEM;
	}
	return 0;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* The target's own checks: absent (0, *exists = 0), a regular file (0, *exists = 1), else error. */
static int check_target(const char *path, struct stat *st, int *exists, sm_error *err)
{
	*exists = 0;
	if (path[0] == '\0')
		return sm_error_set(err, SM_EINVAL, "empty output file name");
	if (lstat(path, st) != 0) {
		if (errno == ENOENT)
			return 0;
		return sm_error_set(err, SM_EIO, "'%s': cannot examine the output file: %s", path,
				    strerror(errno));
	}
	if (S_ISLNK(st->st_mode))
		return sm_error_set(err, SM_EEXIST, "'%s': is a symbolic link: refusing to write "
				    "over it or through it (give the file's own path, or -o - for "
				    "standard output)", path);
	if (!S_ISREG(st->st_mode))
		return sm_error_set(err, SM_EEXIST, "'%s': is %s, not a regular file: refusing to "
				    "replace it", path, kind(st->st_mode));
	*exists = 1;
	return 0;
}

int sm_out_check(const char *path, const sm_out_input *inputs, size_t ninputs, sm_error *err)
{
	struct stat st, is;
	char *dir = NULL, *base = NULL;
	int exists, rc;
	size_t i;

	if ((rc = check_target(path, &st, &exists, err)) != 0 || !exists || ninputs == 0)
		return rc;
	if (split(path, &dir, &base) != 0)
		return sm_error_set(err, SM_ENOMEM, "'%s': out of memory", path);
	for (i = 0; i < ninputs && rc == 0; i++) {
		const sm_out_input *in = &inputs[i];

		if (in->path == NULL || stat(in->path, &is) != 0)
			continue;
		if (in->suffix == NULL) {
			if (is.st_dev == st.st_dev && is.st_ino == st.st_ino)
				rc = sm_error_set(err, SM_EEXIST, "'%s': is an input of this command "
						  "('%s'): refusing to overwrite it", path, in->path);
		} else {
			struct stat ds;

			if (S_ISDIR(is.st_mode) && ends_with(base, in->suffix) &&
			    stat(dir, &ds) == 0 && ds.st_dev == is.st_dev && ds.st_ino == is.st_ino)
				rc = sm_error_set(err, SM_EEXIST, "'%s': is an input of this command "
						  "(a file of '%s'): refusing to overwrite it", path,
						  in->path);
		}
	}
	free(dir);
	free(base);
	return rc;
}

long sm_out_temp_pid(const char *name)
{
	const char *p;
	char *end;
	long pid;

	if (name[0] != '.')
		return 0;
	if (strncmp(name, STAGE_TAG, strlen(STAGE_TAG)) == 0)
		p = name + strlen(STAGE_TAG);
	else if ((p = strstr(name + 1, TMP_TAG)) != NULL)
		p += strlen(TMP_TAG);
	else
		return 0;
	errno = 0;
	pid = strtol(p, &end, 10);
	if (errno != 0 || end == p || *end != '.' || pid <= 0)
		return 0;
	return pid;
}

/* 1 when no process pid exists (as far as this process can see). */
static int pid_gone(long pid)
{
	return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* Removes DIR/.BASE.snapmem-tmp.PID.* of processes that are gone. */
static void remove_stale(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = strlen(prefix);

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		long pid;

		if (strncmp(e->d_name, prefix, n) != 0 || (pid = sm_out_temp_pid(e->d_name)) <= 0 ||
		    !pid_gone(pid))
			continue;
		(void)unlinkat(dirfd(d), e->d_name, 0);
	}
	closedir(d);
}

int sm_outfile_open(sm_outfile *o, const char *path, const sm_out_input *inputs, size_t ninputs,
		    sm_error *err)
{
	char *dir = NULL, *base = NULL, prefix[256];
	int rc, tries;
	size_t n;

	o->path = o->tmp = NULL;
	o->fd = -1;
	o->nosync = 0;
	o->sync_later = 0;
	if ((rc = sm_out_check(path, inputs, ninputs, err)) != 0)
		return rc;
	if (split(path, &dir, &base) != 0 || (o->path = strdup(path)) == NULL) {
		rc = sm_error_set(err, SM_ENOMEM, "'%s': out of memory", path);
		goto fail;
	}
	/* A long name is shortened in the temporary's so that it stays within NAME_MAX. */
	snprintf(prefix, sizeof(prefix), ".%.200s" TMP_TAG, base);
	remove_stale(dir, prefix);
	n = strlen(dir) + strlen(prefix) + 48;
	if ((o->tmp = malloc(n)) == NULL) {
		rc = sm_error_set(err, SM_ENOMEM, "'%s': out of memory", path);
		goto fail;
	}
	for (tries = 0; tries < 16; tries++) {
		uint32_t r = 0;

		if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
			r = (uint32_t)rand();
		snprintf(o->tmp, n, "%s/%s%ld.%08x", dir, prefix, (long)getpid(), (unsigned)r);
		o->fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0666);
		if (o->fd >= 0 || errno != EEXIST)
			break;
	}
	if (o->fd < 0) {
		rc = sm_error_set(err, SM_EIO, "'%s': cannot create a temporary file beside it: %s",
				  path, strerror(errno));
		goto fail;
	}
	free(dir);
	free(base);
	return 0;
fail:
	free(o->tmp);
	free(o->path);
	o->path = o->tmp = NULL;
	free(dir);
	free(base);
	return rc;
}

/* fsync of path's directory, so that the rename is on disk; file systems that cannot sync a
 * directory (EINVAL) are taken as they are. */
static int sync_dir(const char *path)
{
	char *dir = NULL, *base = NULL;
	int fd, rc = 0;

	if (split(path, &dir, &base) != 0)
		return ENOMEM;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		if (fsync(fd) != 0 && errno != EINVAL && errno != EROFS)
			rc = errno;
		close(fd);
	}
	free(dir);
	free(base);
	return rc;
}

int sm_outfile_commit(sm_outfile *o, sm_error *err)
{
	struct stat st;
	int rc = 0, exists, e, tries;

	if (o->fd < 0 && !o->nosync) {
		/* the writer closed it (HDF5 writes through its own descriptor) */
		o->fd = open(o->tmp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (o->fd < 0) {
			rc = sm_error_set(err, SM_EIO, "'%s': cannot reopen the temporary '%s': %s",
					  o->path, o->tmp, strerror(errno));
			goto out;
		}
	}
	if (o->fd >= 0 && !o->nosync && o->sync_later) {
		/* the writeback starts now and runs while the caller does other work; the caller
		 * waits for it (fsync) before the file can be found by its final name */
		(void)sync_file_range(o->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	} else if (o->fd >= 0 && !o->nosync && fsync(o->fd) != 0 && errno != EINVAL &&
		   errno != EROFS) {
		rc = sm_error_set(err, SM_EIO, "'%s': cannot sync: %s", o->path, strerror(errno));
		goto out;
	}
	e = o->fd >= 0 ? close(o->fd) : 0;
	o->fd = -1;
	if (e != 0) {
		rc = sm_error_set(err, SM_EIO, "'%s': cannot close: %s", o->path, strerror(errno));
		goto out;
	}
	for (tries = 0; tries < 2; tries++) {
		if ((rc = check_target(o->path, &st, &exists, err)) != 0)
			goto out;
		if (!exists) {
			if (renameat2(AT_FDCWD, o->tmp, AT_FDCWD, o->path, RENAME_NOREPLACE) == 0)
				break;
			if (errno == EEXIST)
				continue; /* appeared in between: examined again */
			if (errno != EINVAL && errno != ENOSYS) {
				rc = sm_error_set(err, SM_EIO, "'%s': cannot rename into place: %s",
						  o->path, strerror(errno));
				goto out;
			}
		}
		if (rename(o->tmp, o->path) != 0) {
			rc = sm_error_set(err, SM_EIO, "'%s': cannot rename into place: %s", o->path,
					  strerror(errno));
			goto out;
		}
		break;
	}
	if (tries == 2) {
		rc = sm_error_set(err, SM_EEXIST, "'%s': appeared while it was being written", o->path);
		goto out;
	}
	free(o->tmp);
	o->tmp = NULL;
	if (!o->nosync && !o->sync_later && (e = sync_dir(o->path)) != 0)
		rc = sm_error_set(err, SM_EIO, "'%s': cannot sync its directory: %s", o->path,
				  strerror(e));
out:
	sm_outfile_abort(o);
	return rc;
}

void sm_outfile_abort(sm_outfile *o)
{
	if (o == NULL)
		return;
	if (o->fd >= 0)
		close(o->fd);
	o->fd = -1;
	if (o->tmp != NULL)
		unlink(o->tmp);
	free(o->tmp);
	free(o->path);
	o->tmp = o->path = NULL;
}

int sm_out_write(const char *path, const void *data, size_t len, const sm_out_input *inputs,
		 size_t ninputs, sm_error *err)
{
	sm_outfile o;
	const char *p = data;
	size_t off = 0;
	int rc;

	if ((rc = sm_outfile_open(&o, path, inputs, ninputs, err)) != 0)
		return rc;
	while (off < len) {
		ssize_t w = write(o.fd, p + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = sm_error_set(err, SM_EIO, "'%s': cannot write: %s", path,
					  w < 0 ? strerror(errno) : "no progress");
			sm_outfile_abort(&o);
			return rc;
		}
		off += (size_t)w;
	}
	return sm_outfile_commit(&o, err);
}
