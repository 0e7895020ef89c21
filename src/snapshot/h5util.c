/*
 * HDF5 plumbing shared by the readers: silence HDF5's error printing, open files with one-line
 * errors that tell "missing" and "not a regular file" (a FIFO, a directory, a device: refused
 * without blocking) from "not HDF5", and read header attributes of any integer width.
 * Every function closes every handle it opened, on every path.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot/snapshot-internal.h"

void sm_hdf5_quiet(void)
{
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void sm_hdf5_lean(void)
{
	/* HDF5 keeps freed blocks on its own free lists (H5FL_*) for reuse: memory that jemalloc
	 * counts as allocated and no array explains. Measured runs turn them off so that what a
	 * stage holds is what it uses, and ask HDF5 to hand back what it already holds. */
	H5open();
	H5set_free_list_limits(0, 0, 0, 0, 0, 0);
	H5garbage_collect();
}

/*
 * Checks that path names a regular file and reads its first 8 bytes: 1 when they are the HDF5
 * signature (no user block), 0 when not (a file with a user block may still be HDF5: H5Fis_hdf5
 * decides those), or a negative SM_E* code with err set. The open is non-blocking, so that a FIFO
 * with no writer or a device answers at once instead of hanging the caller; fstat then refuses
 * anything that is not a regular file before HDF5 ever opens the path. (HDF5 opens it again by
 * name: a file swapped for a FIFO in between is not caught, a race this cannot close.)
 */
static int check_regular(const char *path, sm_error *err)
{
	static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
	unsigned char buf[8];
	struct stat st;
	ssize_t n;
	int fd, rc;

	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return sm_error_set(err, errno == ENOENT ? SM_ENOTFOUND : SM_EIO, "'%s': %s", path,
				    strerror(errno));
	if (fstat(fd, &st) != 0) {
		rc = sm_error_set(err, SM_EIO, "'%s': %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = sm_error_set(err, SM_EFORMAT, "'%s': not a regular file (%s)", path,
				  S_ISDIR(st.st_mode)    ? "a directory"
				  : S_ISFIFO(st.st_mode) ? "a FIFO"
				  : S_ISCHR(st.st_mode)  ? "a character device"
				  : S_ISBLK(st.st_mode)  ? "a block device"
				  : S_ISSOCK(st.st_mode) ? "a socket"
							 : "a special file");
		goto out;
	}
	do
		n = read(fd, buf, sizeof(buf));
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		rc = sm_error_set(err, SM_EIO, "'%s': %s", path, strerror(errno));
		goto out;
	}
	rc = n == (ssize_t)sizeof(buf) && memcmp(buf, sig, sizeof(sig)) == 0;
out:
	close(fd);
	return rc;
}

int sm_file_check_regular(const char *path, sm_error *err)
{
	int rc = check_regular(path, err);

	return rc < 0 ? rc : 0;
}

int sm__h5_open(const char *path, hid_t *out, sm_error *err)
{
	hid_t f;
	int sig;

	sm_hdf5_quiet();
	/* One open(2) to tell "missing", "unreadable" and "not a regular file" from "not HDF5":
	 * H5Fis_hdf5 would open the file a second time, which doubles the cost of a 600-chunk
	 * catalogue. */
	sig = check_regular(path, err);
	if (sig < 0)
		return sig;
	if (sig == 0 && H5Fis_hdf5(path) <= 0)
		return sm_error_set(err, SM_EFORMAT, "'%s': not an HDF5 file", path);
	f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	if (f < 0)
		return sm_error_set(err, SM_EFORMAT,
				    "'%s': cannot be opened as HDF5 (truncated or damaged)", path);
	*out = f;
	return 0;
}

int sm__h5_exists(hid_t loc, const char *name)
{
	return H5Lexists(loc, name, H5P_DEFAULT) > 0;
}

/*
 * Opens attribute name on loc and checks its shape: scalar or [1] when n == 1, else exactly [n].
 * Returns 1 when absent, 0 and *attr, *type when present and well shaped, or a negative code.
 */
static int open_attr(hid_t loc, const char *file, const char *obj, const char *name, int n,
		     hid_t *attr, hid_t *type, sm_error *err)
{
	hid_t a = -1, t = -1, sp = -1;
	hssize_t npts;
	int rank, rc = 0;

	if (H5Aexists(loc, name) <= 0)
		return 1;
	a = H5Aopen(loc, name, H5P_DEFAULT);
	if (a < 0) {
		rc = sm_error_set(err, SM_EFORMAT, "'%s': %s attribute '%s' cannot be opened",
				  file, obj, name);
		goto out;
	}
	t = H5Aget_type(a);
	sp = H5Aget_space(a);
	if (t < 0 || sp < 0) {
		rc = sm_error_set(err, SM_EFORMAT, "'%s': %s attribute '%s' is damaged", file, obj,
				  name);
		goto out;
	}
	rank = H5Sget_simple_extent_ndims(sp);
	npts = H5Sget_simple_extent_npoints(sp);
	if (rank < 0 || rank > 1 || npts != (hssize_t)n || (n > 1 && rank != 1)) {
		rc = sm_error_set(err, SM_EFORMAT,
				  "'%s': %s attribute '%s' has %lld element%s in %d dimension%s, "
				  "expected %s%d",
				  file, obj, name, (long long)npts, npts == 1 ? "" : "s", rank,
				  rank == 1 ? "" : "s", n == 1 ? "a scalar, " : "", n);
		goto out;
	}
	*attr = a;
	*type = t;
	a = t = -1;
out:
	if (sp >= 0)
		H5Sclose(sp);
	if (t >= 0)
		H5Tclose(t);
	if (a >= 0)
		H5Aclose(a);
	return rc;
}

int sm__attr_u64(hid_t loc, const char *file, const char *obj, const char *name, uint64_t *out,
		 int n, int required, sm_error *err)
{
	hid_t a = -1, t = -1;
	int64_t sv[SM_NTYPES];
	uint64_t uv[SM_NTYPES];
	int rc, i;

	if (n < 1 || n > SM_NTYPES)
		return sm_error_set(err, SM_EINVAL, "'%s': %s attribute '%s': bad element count %d",
				    file, obj, name, n);
	rc = open_attr(loc, file, obj, name, n, &a, &t, err);
	if (rc == 1) {
		if (required)
			return sm_error_set(err, SM_EFORMAT, "'%s': %s attribute '%s' is missing",
					    file, obj, name);
		return 1;
	}
	if (rc != 0)
		return rc;
	if (H5Tget_class(t) != H5T_INTEGER) {
		rc = sm_error_set(err, SM_EFORMAT, "'%s': %s attribute '%s' is not an integer",
				  file, obj, name);
		goto out;
	}
	if (H5Tget_sign(t) == H5T_SGN_NONE) {
		if (H5Aread(a, H5T_NATIVE_UINT64, uv) < 0) {
			rc = sm_error_set(err, SM_EFORMAT, "'%s': %s attribute '%s' cannot be read",
					  file, obj, name);
			goto out;
		}
	} else {
		if (H5Aread(a, H5T_NATIVE_INT64, sv) < 0) {
			rc = sm_error_set(err, SM_EFORMAT, "'%s': %s attribute '%s' cannot be read",
					  file, obj, name);
			goto out;
		}
		for (i = 0; i < n; i++) {
			if (sv[i] < 0) {
				rc = sm_error_set(err, SM_EFORMAT,
						  "'%s': %s attribute '%s' has a negative value "
						  "(%lld at index %d)",
						  file, obj, name, (long long)sv[i], i);
				goto out;
			}
			uv[i] = (uint64_t)sv[i];
		}
	}
	memcpy(out, uv, (size_t)n * sizeof(*out));
out:
	H5Tclose(t);
	H5Aclose(a);
	return rc;
}

int sm__attr_doubles(hid_t loc, const char *file, const char *obj, const char *name, double *out,
		     int n, int required, sm_error *err)
{
	hid_t a = -1, t = -1;
	H5T_class_t cls;
	double v[SM_NTYPES];
	int rc;

	if (n < 1 || n > SM_NTYPES)
		return sm_error_set(err, SM_EINVAL, "'%s': %s attribute '%s': bad element count %d",
				    file, obj, name, n);
	rc = open_attr(loc, file, obj, name, n, &a, &t, err);
	if (rc == 1) {
		if (required)
			return sm_error_set(err, SM_EFORMAT, "'%s': %s attribute '%s' is missing",
					    file, obj, name);
		return 1;
	}
	if (rc != 0)
		return rc;
	cls = H5Tget_class(t);
	if (cls != H5T_FLOAT && cls != H5T_INTEGER) {
		rc = sm_error_set(err, SM_EFORMAT, "'%s': %s attribute '%s' is not a number", file,
				  obj, name);
		goto out;
	}
	if (H5Aread(a, H5T_NATIVE_DOUBLE, v) < 0) {
		rc = sm_error_set(err, SM_EFORMAT, "'%s': %s attribute '%s' cannot be read", file,
				  obj, name);
		goto out;
	}
	memcpy(out, v, (size_t)n * sizeof(*out));
out:
	H5Tclose(t);
	H5Aclose(a);
	return rc;
}

int sm__attr_double(hid_t loc, const char *file, const char *obj, const char *name, double *out,
		    int required, sm_error *err)
{
	return sm__attr_doubles(loc, file, obj, name, out, 1, required, err);
}
