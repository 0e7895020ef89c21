/*
 * libFuzzer target: the HDF5 metadata reader of src/snapshot/h5meta.c (catalogue chunks read
 * without libhdf5), fed raw file images.
 *
 * Unlike fuzz-header, which keeps libhdf5 out of the way of raw mutation, this target mutates the
 * bytes of whole files: h5meta.c is snapmem's own parser of superblocks, object headers, symbol
 * tables, attribute and layout messages, so every byte of a file is its input. The seed corpus is
 * the real TNG100-1 catalogue chunk of tests/data (fof_subhalo_tab_099.2.hdf5) and small variants.
 * The image is written to a private directory under /dev/shm (else $TMPDIR) and walked as
 * catalog.c walks a chunk: the root group, /Header and its attributes read element by element,
 * /Group and its columns' dataset messages. Contract checked here, beyond "no crash, no read past
 * a buffer" (the sanitizer build): a dataset vouched for lies inside the file, its bytes are its
 * elements times their size, an attribute vouched for fits its 64 bytes, and the reader allocates
 * nothing (no descriptor left open after close).
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot/snapshot-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256];
static char path[512];

static void cleanup(void)
{
	unlink(path);
	rmdir(dir);
}

static void attrs(const sm__h5m_obj *o)
{
	static const char *const names[] = { "Ngroups_ThisFile", "Ngroups_Total", "Nsubgroups_Total",
					     "NumFiles", "BoxSize", "HubbleParam", "Redshift",
					     "Nids_Total" };
	sm__h5m_attr a;
	size_t i;
	uint64_t k, v;
	double d;
	int neg;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (sm__h5m_find_attr(o, names[i], &a) != 0)
			continue;
		if (a.rank > 2 || (a.type.size != 0 && a.npts > sizeof(a.data) / a.type.size))
			abort();  /* vouched for, yet its values do not fit the copy */
		for (k = 0; k < a.npts && k < 16; k++) {
			(void)sm__h5m_value_u64(&a, k, &neg, &v);
			(void)sm__h5m_value_double(&a, k, &d);
		}
		/* one past the end is refused, never read */
		(void)sm__h5m_value_u64(&a, a.npts, &neg, &v);
		(void)sm__h5m_value_double(&a, a.npts, &d);
	}
}

static void columns(sm__h5m *m, const sm__h5m_obj *group, sm__h5m_obj *col)
{
	static const char *const names[] = { "Group_M_Crit200", "Group_R_Crit200", "GroupPos",
					     "GroupLenType" };
	sm__h5m_dset d;
	uint64_t oh, el;
	size_t i;
	unsigned char buf[64];

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (sm__h5m_lookup(m, group, names[i], &oh) != 0 || sm__h5m_object(m, oh, col) != 0 ||
		    sm__h5m_dataset(m, col, &d) != 0)
			continue;
		if (d.type.size == 0 || d.rank > 2 || d.addr > m->size || d.bytes > m->size - d.addr ||
		    d.addr > m->eoa || d.bytes > m->eoa - d.addr)
			abort();  /* vouched for, yet outside the file */
		if (__builtin_mul_overflow(d.npts, (uint64_t)d.type.size, &el) || el != d.bytes)
			abort();  /* storage is not elements x element size */
		if (d.bytes > 0 &&
		    pread(m->fd, buf, d.bytes < sizeof(buf) ? d.bytes : sizeof(buf),
			  (off_t)d.addr) < 0)
			abort();
	}
}

static void walk(void)
{
	sm__h5m *m = malloc(sizeof(*m));
	sm__h5m_obj *root = malloc(sizeof(*root)), *obj = malloc(sizeof(*obj)),
		    *col = malloc(sizeof(*col));
	uint64_t oh;

	if (m == NULL || root == NULL || obj == NULL || col == NULL)
		goto out;
	if (sm__h5m_open(m, path) != 0)
		goto out;
	if (sm__h5m_object(m, m->root, root) == 0) {
		if (sm__h5m_lookup(m, root, "Header", &oh) == 0 && sm__h5m_object(m, oh, obj) == 0)
			attrs(obj);
		if (sm__h5m_lookup(m, root, "Group", &oh) == 0 && sm__h5m_object(m, oh, obj) == 0)
			columns(m, obj, col);
		/* a name that no file holds */
		(void)sm__h5m_lookup(m, root, "NoSuchGroup", &oh);
	}
	sm__h5m_close(m);
out:
	free(col);
	free(obj);
	free(root);
	free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *t;
	int fd;
	size_t done = 0;

	if (dir[0] == '\0') {
		t = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
		snprintf(dir, sizeof(dir), "%s/snapmem-fuzz-h5m-XXXXXX", t != NULL ? t : "/tmp");
		if (mkdtemp(dir) == NULL) {
			dir[0] = '\0';
			return 0;
		}
		snprintf(path, sizeof(path), "%s/chunk.hdf5", dir);
		atexit(cleanup);
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return 0;
	while (done < size) {
		ssize_t w = write(fd, data + done, size - done);

		if (w <= 0)
			break;
		done += (size_t)w;
	}
	close(fd);
	if (done == size)
		walk();
	return 0;
}
