/*
 * Run directories (include/snapmem/outfile.h; the guarantees in docs/PIPELINE.md "Run
 * directories"): one run at a time per directory, its files committed together, each stamped with
 * one run id.
 *
 * The lock is flock(LOCK_EX | LOCK_NB) on the directory itself: no lock file to go stale, released
 * by the kernel when the process ends however it ends. A run that finds the lock taken fails at
 * once, naming the holder from /proc/locks. Because a failing run removes a directory it created,
 * the lock is taken on an open descriptor and then checked to still be the directory named by the
 * path (same st_dev/st_ino), else taken again. A file system without flock on directories
 * (ENOLCK, EOPNOTSUPP, ENOSYS, EINVAL; EBADF on NFS, which emulates flock with byte-range locks
 * that need a descriptor open for writing) leaves the run unlocked and says so through lock_errno.
 *
 * Under the lock every staging directory in the run directory is a dead run's (the run that made
 * it would hold the lock) and is removed, as are temporaries of outfile.c and of snapmem versions
 * before this one (".profiles.hdf5.tmp.PID", "NAME.tmp.PID") whose process is gone. Unlocked,
 * only those of gone processes are removed.
 *
 * The commit: every staged file and every target is checked first, every staged file synced; the files being replaced are
 * hard-linked into the staging directory (".old.NAME"); then each staged file is renamed over its
 * target. Each rename is atomic; the set is not: a crash (SIGKILL, power loss) between two renames
 * leaves files of two runs, which `snapmem report` refuses because their run ids differ. An error
 * of a rename puts the files already moved back from their links (or removes them when there was
 * no earlier file). On a file system without hard links the earlier files cannot be put back.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "snapmem/outfile.h"

const char *const sm_rundir_files[] = {
	"profiles.hdf5", "estimate.json", "memory.json", "report.md", "report.html",
	"memory.interrupted.json", NULL,
};

#define STAGE_PREFIX ".snapmem-staging."

int sm_run_id_new(char id[SM_RUN_ID_LEN + 1], char started[SM_RUN_STARTED_LEN], sm_error *err)
{
	unsigned char r[SM_RUN_ID_LEN / 2];
	size_t got = 0, i;
	time_t t = time(NULL);
	struct tm tm;

	while (got < sizeof(r)) {
		ssize_t n = getrandom(r + got, sizeof(r) - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return sm_error_set(err, SM_EIO, "cannot draw a run id: getrandom: %s",
					    strerror(errno));
		got += (size_t)n;
	}
	for (i = 0; i < sizeof(r); i++)
		snprintf(id + 2 * i, 3, "%02x", r[i]);
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(started, SM_RUN_STARTED_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(started, SM_RUN_STARTED_LEN, "unknown");
	return 0;
}

/* The process holding a flock on (dev, ino), from /proc/locks; 0 when not found. */
static long lock_holder(dev_t dev, ino_t ino)
{
	FILE *f = fopen("/proc/locks", "re");
	char line[256], type[16], adv[16], rw[16];
	unsigned maj, min;
	unsigned long long i;
	long pid, found = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "%*d: %15s %15s %15s %ld %x:%x:%llu", type, adv, rw, &pid, &maj,
			   &min, &i) != 7)
			continue;
		if (strcmp(type, "FLOCK") == 0 && maj == major(dev) && min == minor(dev) &&
		    i == (unsigned long long)ino && pid != (long)getpid()) {
			found = pid;
			break;
		}
	}
	fclose(f);
	return found;
}

/* A process's command name ("snapmem"), or "" when it cannot be read. */
static void proc_name(long pid, char *buf, size_t len)
{
	char p[64];
	FILE *f;

	buf[0] = '\0';
	snprintf(p, sizeof(p), "/proc/%ld/comm", pid);
	f = fopen(p, "re");
	if (f == NULL)
		return;
	if (fgets(buf, (int)len, f) == NULL)
		buf[0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
}

/* Removes directory name in dirfd and the files in it (a staging directory holds files only). */
static void remove_tree_at(int dfd, const char *name)
{
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d;
	struct dirent *e;

	if (fd < 0) {
		/* not a directory, or no descriptor left (EMFILE): an empty directory still goes */
		if (unlinkat(dfd, name, 0) != 0)
			(void)unlinkat(dfd, name, AT_REMOVEDIR);
		return;
	}
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) != 0 && errno == EISDIR)
			remove_tree_at(dirfd(d), e->d_name);
	}
	closedir(d);
	(void)unlinkat(dfd, name, AT_REMOVEDIR);
}

static int pid_gone(long pid)
{
	return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* The process id of a temporary left by snapmem before outfile.c: ".profiles.hdf5.tmp.PID" and
 * "NAME.tmp.PID" for the run's own file names; else 0. */
static long legacy_temp_pid(const char *name)
{
	const char *const *f;
	char *end;
	long pid;

	for (f = sm_rundir_files; *f != NULL; f++) {
		size_t n = strlen(*f);
		const char *p = name;

		if (name[0] == '.')
			p++;
		if (strncmp(p, *f, n) != 0 || strncmp(p + n, ".tmp.", 5) != 0)
			continue;
		errno = 0;
		pid = strtol(p + n + 5, &end, 10);
		if (errno == 0 && *end == '\0' && pid > 0)
			return pid;
	}
	return 0;
}

/*
 * Removes what dead runs left in the directory (all staging directories when locked), then
 * tells whether anything else is there (*nonempty) and whether a run's file is (*had_run).
 */
static int sweep(sm_rundir *d, int locked, int *nonempty, sm_error *err)
{
	int fd = dup(d->fd);
	DIR *dd;
	struct dirent *e;

	*nonempty = 0;
	d->had_run = 0;
	if (fd < 0 || (dd = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return sm_error_set(err, SM_EIO, "'%s': cannot read the directory: %s", d->path,
				    strerror(errno));
	}
	rewinddir(dd);
	while ((e = readdir(dd)) != NULL) {
		const char *n = e->d_name;
		const char *const *f;
		long pid;

		if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
			continue;
		if (strncmp(n, STAGE_PREFIX, strlen(STAGE_PREFIX)) == 0) {
			pid = sm_out_temp_pid(n);
			if (locked || (pid > 0 && pid_gone(pid)))
				remove_tree_at(dirfd(dd), n);
			continue; /* a live run's (unlocked file system): not content */
		}
		if ((pid = sm_out_temp_pid(n)) > 0 || (pid = legacy_temp_pid(n)) > 0) {
			if (pid_gone(pid))
				(void)unlinkat(dirfd(dd), n, 0);
			continue;
		}
		*nonempty = 1;
		for (f = sm_rundir_files; *f != NULL; f++)
			if (strcmp(n, *f) == 0)
				d->had_run = 1;
	}
	closedir(dd);
	return 0;
}

/* path/name into a malloc'd string. */
static char *join(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *s = malloc(n);

	if (s != NULL)
		snprintf(s, n, "%s/%s", a, b);
	return s;
}

/* Locks d->path (made when absent) into d->fd. */
static int lock_dir(sm_rundir *d, sm_error *err)
{
	struct stat a, b;
	int tries;

	for (tries = 0; tries < 8; tries++) {
		d->created = 0;
		if (mkdir(d->path, 0777) == 0)
			d->created = 1;
		else if (errno != EEXIST)
			return sm_error_set(err, SM_EIO, "'%s': cannot create the run directory: %s",
					    d->path, strerror(errno));
		d->fd = open(d->path, O_RDONLY | O_DIRECTORY | O_NONBLOCK | O_CLOEXEC);
		if (d->fd < 0) {
			if (errno == ENOTDIR)
				return sm_error_set(err, SM_EEXIST, "'%s': exists and is not a "
						    "directory", d->path);
			if (errno == ENOENT)
				continue; /* removed in between */
			return sm_error_set(err, SM_EIO, "'%s': cannot open the run directory: %s",
					    d->path, strerror(errno));
		}
		if (flock(d->fd, LOCK_EX | LOCK_NB) != 0) {
			if (errno == EWOULDBLOCK) {
				char name[64] = "";
				long pid = 0;

				if (fstat(d->fd, &a) == 0)
					pid = lock_holder(a.st_dev, a.st_ino);
				if (pid > 0)
					proc_name(pid, name, sizeof(name));
				close(d->fd);
				d->fd = -1;
				d->created = 0;
				if (pid > 0)
					return sm_error_set(err, SM_EEXIST, "'%s': run directory is in "
							    "use by another run (process %ld%s%s%s); "
							    "wait for it or use another --out",
							    d->path, pid, name[0] ? " '" : "", name,
							    name[0] ? "'" : "");
				return sm_error_set(err, SM_EEXIST, "'%s': run directory is in use by "
						    "another run (locked by another process); wait "
						    "for it or use another --out", d->path);
			}
			/* EBADF: NFS emulates flock with byte-range locks, which an exclusive lock
			 * needs a descriptor open for writing for, and a directory cannot be */
			if (errno != ENOLCK && errno != EOPNOTSUPP && errno != ENOSYS &&
			    errno != EINVAL && errno != EBADF) {
				int e = errno;

				close(d->fd);
				d->fd = -1;
				return sm_error_set(err, SM_EIO, "'%s': cannot lock the run directory: "
						    "%s", d->path, strerror(e));
			}
			d->lock_errno = errno;
			return 0;
		}
		/* Still the directory the path names (a failing run removes one it created)? */
		if (fstat(d->fd, &a) == 0 && stat(d->path, &b) == 0 && a.st_dev == b.st_dev &&
		    a.st_ino == b.st_ino)
			return 0;
		close(d->fd);
		d->fd = -1;
	}
	return sm_error_set(err, SM_EIO, "'%s': the run directory keeps being replaced", d->path);
}

int sm_rundir_open(sm_rundir *d, const char *path, int force, sm_error *err)
{
	const char *const *f;
	char name[64];
	int rc, nonempty = 0;

	memset(d, 0, sizeof(*d));
	d->fd = -1;
	if (path == NULL || path[0] == '\0')
		return sm_error_set(err, SM_EINVAL, "empty run directory name");
	if ((d->path = strdup(path)) == NULL) {
		rc = sm_error_set(err, SM_ENOMEM, "'%s': out of memory", path);
		goto fail;
	}
	if ((rc = sm_run_id_new(d->id, d->started, err)) != 0 || (rc = lock_dir(d, err)) != 0 ||
	    (rc = sweep(d, d->lock_errno == 0, &nonempty, err)) != 0)
		goto fail;
	if (nonempty && !force) {
		rc = sm_error_set(err, SM_EEXIST, "'%s': run directory exists and is not empty (use "
				  "--force to write into it, or another --out)", path);
		goto fail;
	}
	for (f = sm_rundir_files; *f != NULL; f++) {
		char *p = join(path, *f);

		if (p == NULL) {
			rc = sm_error_set(err, SM_ENOMEM, "'%s': out of memory", path);
			goto fail;
		}
		rc = sm_out_check(p, NULL, 0, err);
		free(p);
		if (rc != 0)
			goto fail;
	}
	snprintf(name, sizeof(name), STAGE_PREFIX "%ld.%s", (long)getpid(), d->id);
	if ((d->stage = join(path, name)) == NULL) {
		rc = sm_error_set(err, SM_ENOMEM, "'%s': out of memory", path);
		goto fail;
	}
	if (mkdir(d->stage, 0777) != 0) {
		rc = sm_error_set(err, SM_EIO, "'%s': cannot create the staging directory '%s': %s",
				  path, name, strerror(errno));
		free(d->stage);
		d->stage = NULL;
		goto fail;
	}
	return 0;
fail:
	sm_rundir_close(d);
	return rc;
}

char *sm_rundir_staged(const sm_rundir *d, const char *name, char *buf, size_t len)
{
	if (d->stage == NULL || (size_t)snprintf(buf, len, "%s/%s", d->stage, name) >= len)
		return NULL;
	return buf;
}

/* 1 when name is one of names[0..n). */
static int listed(const char *name, const char *const *names, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return 1;
	return 0;
}

/* fdatasync of a staged file (the writers of the run's files may leave that to the commit:
 * sm_outfile.sync_later): its data and size, not the ctime its rename within the staging
 * directory changed (an fsync would commit the journal again for every file already synced); a
 * file system that cannot sync (EINVAL, EROFS) is taken as it is. */
static int sync_staged(int sfd, const char *stage, const char *name, sm_error *err)
{
	int fd = openat(sfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), rc = 0;

	if (fd < 0)
		return sm_error_set(err, SM_EIO, "'%s/%s': cannot open the staged file: %s", stage,
				    name, strerror(errno));
	if (fdatasync(fd) != 0 && errno != EINVAL && errno != EROFS)
		rc = sm_error_set(err, SM_EIO, "'%s/%s': cannot sync: %s", stage, name,
				  strerror(errno));
	close(fd);
	return rc;
}

int sm_rundir_commit(sm_rundir *d, const char *const *names, size_t n, int whole, sm_error *err)
{
	int sfd = -1, rc = 0;
	size_t i, done = 0;
	unsigned char *backed = NULL, *existed = NULL;
	char old[300];
	struct stat st;

	if (d->fd < 0 || d->stage == NULL)
		return sm_error_set(err, SM_EINVAL, "run directory not open");
	sfd = open(d->stage, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	backed = calloc(n + 1, 1);
	existed = calloc(n + 1, 1);
	if (sfd < 0 || backed == NULL || existed == NULL) {
		rc = sfd < 0 ? sm_error_set(err, SM_EIO, "'%s': cannot open the staging directory: %s",
					    d->stage, strerror(errno))
			     : sm_error_set(err, SM_ENOMEM, "'%s': out of memory", d->path);
		goto out;
	}
	/* Everything checked, and every staged file synced, before anything moves. */
	for (i = 0; i < n; i++) {
		if (fstatat(sfd, names[i], &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) {
			rc = sm_error_set(err, SM_EIO, "'%s/%s': the staged file is missing", d->stage,
					  names[i]);
			goto out;
		}
		if ((rc = sync_staged(sfd, d->stage, names[i], err)) != 0)
			goto out;
		if (fstatat(d->fd, names[i], &st, AT_SYMLINK_NOFOLLOW) == 0) {
			if (!S_ISREG(st.st_mode)) {
				char *p = join(d->path, names[i]);

				rc = sm_out_check(p != NULL ? p : names[i], NULL, 0, err);
				free(p);
				if (rc == 0)
					rc = sm_error_set(err, SM_EEXIST, "'%s/%s': not a regular file",
							  d->path, names[i]);
				goto out;
			}
			existed[i] = 1;
		} else if (errno != ENOENT) {
			rc = sm_error_set(err, SM_EIO, "'%s/%s': cannot examine: %s", d->path,
					  names[i], strerror(errno));
			goto out;
		}
	}
	for (i = 0; i < n; i++) {
		if (!existed[i])
			continue;
		snprintf(old, sizeof(old), ".old.%.250s", names[i]);
		if (linkat(d->fd, names[i], sfd, old, 0) == 0)
			backed[i] = 1;
		else if (errno != EPERM && errno != EOPNOTSUPP && errno != EMLINK && errno != ENOSYS)
			{
			rc = sm_error_set(err, SM_EIO, "'%s/%s': cannot keep the earlier file while "
					  "committing: %s", d->path, names[i], strerror(errno));
			goto out;
		}
	}
	for (done = 0; done < n; done++) {
		if (renameat(sfd, names[done], d->fd, names[done]) != 0) {
			int e = errno;

			rc = sm_error_set(err, SM_EIO, "'%s/%s': cannot move into place: %s%s",
					  d->path, names[done], strerror(e),
					  done > 0 ? "; the files already moved were put back" : "");
			break;
		}
	}
	if (rc != 0) {
		/* Put back what was replaced, remove what was new. */
		for (i = 0; i < done; i++) {
			snprintf(old, sizeof(old), ".old.%.250s", names[i]);
			if (backed[i])
				(void)renameat(sfd, old, d->fd, names[i]);
			else if (!existed[i])
				(void)unlinkat(d->fd, names[i], 0);
		}
		goto out;
	}
	d->committed = 1;
	if (whole) {
		const char *const *f;

		for (f = sm_rundir_files; *f != NULL; f++)
			if (!listed(*f, names, n))
				(void)unlinkat(d->fd, *f, 0);
	}
	if (fsync(d->fd) != 0 && errno != EINVAL && errno != EROFS)
		rc = sm_error_set(err, SM_EIO, "'%s': cannot sync the run directory: %s", d->path,
				  strerror(errno));
out:
	if (sfd >= 0)
		close(sfd);
	free(backed);
	free(existed);
	return rc;
}

void sm_rundir_close(sm_rundir *d)
{
	if (d == NULL || d->path == NULL)
		return;
	if (d->stage != NULL) {
		const char *name = strrchr(d->stage, '/');

		if (d->fd >= 0 && name != NULL)
			remove_tree_at(d->fd, name + 1);
		free(d->stage);
		d->stage = NULL;
	}
	if (d->created && !d->committed && d->path != NULL)
		(void)rmdir(d->path);
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
	free(d->path);
	d->path = NULL;
}
