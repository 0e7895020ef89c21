/*
 * benchmark-copy: the physical limit under `snapmem run` — copying the byte ranges the run reads
 * (InternalEnergy, ElectronAbundance, StarFormationRate and Coordinates of PartType0, as stored,
 * in every chunk file) out of the page cache into memory with pread(2), on as many threads as the
 * run uses (SNAPMEM_THREADS, else the CPUs this process may use, at most 8), and nothing else:
 * no conversion, no HDF5. Each field goes into its own buffer, allocated and written once before
 * the clock starts (so that only the copy is timed: the limit, like `cat` into one small buffer);
 * `--fresh` maps them per repeat instead, as the run must have its arrays (fresh pages, their
 * faults timed too, unmapped after), and asks for transparent huge pages as the run does for its
 * large arrays (MADV_HUGEPAGE, unless SNAPMEM_HUGEPAGES=0): the cheapest fresh memory there is,
 * so that the floor is not raised by 4 KiB faults the run does not take. Byte
 * ranges come from HDF5 (H5Dget_offset) before the clock starts; every dataset must be
 * contiguous and unfiltered (else exit 2: there is no raw copy to compare with).
 *
 * Usage: benchmark-copy BASE SNAP [REPEATS] [--fresh]
 * Prints one JSON line:
 * {"gas_cells":N,"bytes":B,"threads":T,"buffers":"warm","seconds":[...],"median_s":x}
 */
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hdf5.h>

#include "bench.h"
#include "snapmem/snapshot.h"

#define MAX_THREADS 8
#define NFIELDS 4

struct range {
	int fd;
	uint64_t off, bytes;
	int field;
	uint64_t dst; /* offset in the field's buffer */
};

struct job {
	const struct range *r;
	size_t nr;
	unsigned char *buf[NFIELDS];
	uint64_t total;
	unsigned part, parts;
	int failed;
};

/* A fresh buffer as the run's large arrays are (mapped, huge pages asked for), or NULL. */
static unsigned char *fresh_map(uint64_t bytes)
{
	const char *e = getenv("SNAPMEM_HUGEPAGES");
	void *p = mmap(NULL, bytes > 0 ? bytes : 1, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (e == NULL || strcmp(e, "0") != 0)
		(void)madvise(p, bytes > 0 ? bytes : 1, MADV_HUGEPAGE); /* a hint */
	return p;
}

static unsigned threads(void)
{
	const char *e = getenv("SNAPMEM_THREADS");
	cpu_set_t set;
	unsigned n = 1;

	if (e != NULL && *e != '\0')
		n = (unsigned)atoi(e);
	else if (sched_getaffinity(0, sizeof(set), &set) == 0)
		n = (unsigned)CPU_COUNT(&set);
	return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : n;
}

/* Part p copies the p-th share of all bytes (the ranges laid end to end), piece by piece. */
static void *copy_part(void *arg)
{
	struct job *J = arg;
	uint64_t lo = J->total * J->part / J->parts, hi = J->total * (J->part + 1) / J->parts;
	uint64_t at = 0;
	size_t i;

	for (i = 0; i < J->nr && at < hi; i++) {
		const struct range *r = &J->r[i];
		uint64_t a = lo > at ? lo - at : 0, z = hi - at < r->bytes ? hi - at : r->bytes;

		while (a < z) {
			ssize_t got = pread(r->fd, J->buf[r->field] + r->dst + a, (size_t)(z - a),
					    (off_t)(r->off + a));

			if (got <= 0) {
				J->failed = 1;
				return NULL;
			}
			a += (uint64_t)got;
		}
		at += r->bytes;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	static const char *const fields[NFIELDS] = {"InternalEnergy", "ElectronAbundance",
						    "StarFormationRate", "Coordinates"};
	sm_snapshot s;
	sm_error err;
	struct range *rg = NULL;
	size_t nr = 0;
	int *fds = NULL, repeats = 5, r, rc = 2, f, fresh = 0;
	unsigned char *keep[NFIELDS] = {NULL};
	uint64_t fbytes[NFIELDS] = {0}, total = 0;
	double *secs = NULL;
	unsigned nt = threads(), t;
	int64_t i;

	memset(&s, 0, sizeof(s));
	sm_error_clear(&err);
	if (argc < 3) {
		fprintf(stderr, "usage: benchmark-copy BASE SNAP [REPEATS] [--fresh]\n");
		return 2;
	}
	if (argc > 3)
		repeats = atoi(argv[3]) > 0 ? atoi(argv[3]) : 1;
	if (argc > 4 && strcmp(argv[4], "--fresh") == 0)
		fresh = 1;
	sm_hdf5_quiet();
	if (sm_snapshot_open_base(&s, argv[1], atoi(argv[2]), &err) != 0 ||
	    sm_snapshot_scan(&s, &err) != 0)
		goto out;
	rg = calloc((size_t)s.nfiles * NFIELDS, sizeof(*rg));
	fds = calloc((size_t)s.nfiles, sizeof(*fds));
	secs = calloc((size_t)repeats, sizeof(*secs));
	if (rg == NULL || fds == NULL || secs == NULL) {
		sm_error_set(&err, SM_ENOMEM, "cannot allocate the range table");
		goto out;
	}
	for (i = 0; i < s.nfiles; i++) {
		char path[SM_PATH_MAX], name[64];
		hid_t h;

		fds[i] = -1;
		if (s.chunk_counts[(size_t)i * SM_NTYPES] == 0)
			continue;
		if (sm_snapshot_chunk_path(&s, i, path, sizeof(path), &err) != 0)
			goto out;
		fds[i] = open(path, O_RDONLY | O_CLOEXEC);
		h = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
		if (fds[i] < 0 || h < 0) {
			sm_error_set(&err, SM_EIO, "'%s': cannot open", path);
			goto out;
		}
		for (f = 0; f < NFIELDS; f++) {
			hid_t d, dcpl;
			haddr_t off;
			hsize_t sz;
			int plain;

			snprintf(name, sizeof(name), "/PartType0/%s", fields[f]);
			d = H5Dopen2(h, name, H5P_DEFAULT);
			dcpl = d >= 0 ? H5Dget_create_plist(d) : -1;
			plain = dcpl >= 0 && H5Pget_layout(dcpl) == H5D_CONTIGUOUS &&
				H5Pget_nfilters(dcpl) == 0;
			off = d >= 0 ? H5Dget_offset(d) : HADDR_UNDEF;
			sz = d >= 0 ? H5Dget_storage_size(d) : 0;
			if (dcpl >= 0)
				H5Pclose(dcpl);
			if (d >= 0)
				H5Dclose(d);
			if (!plain || off == HADDR_UNDEF) {
				H5Fclose(h);
				sm_error_set(&err, SM_EFORMAT, "'%s': %s is not contiguous and "
					     "unfiltered: no raw copy to measure", path, name);
				goto out;
			}
			rg[nr].fd = fds[i];
			rg[nr].off = (uint64_t)off;
			rg[nr].bytes = (uint64_t)sz;
			rg[nr].field = f;
			rg[nr].dst = fbytes[f];
			fbytes[f] += (uint64_t)sz;
			total += (uint64_t)sz;
			nr++;
		}
		H5Fclose(h);
	}
	for (f = 0; f < NFIELDS && !fresh; f++) {
		keep[f] = malloc(fbytes[f] > 0 ? fbytes[f] : 1);
		if (keep[f] == NULL) {
			sm_error_set(&err, SM_ENOMEM, "cannot allocate the copy buffers");
			goto out;
		}
		memset(keep[f], 0, fbytes[f] > 0 ? fbytes[f] : 1);
	}
	for (r = 0; r < repeats; r++) {
		pthread_t th[MAX_THREADS];
		struct job J[MAX_THREADS];
		unsigned char *buf[NFIELDS] = {NULL};
		int started[MAX_THREADS] = {0}, failed = 0;
		double t0 = bench_now();

		for (f = 0; f < NFIELDS; f++) {
			buf[f] = fresh ? fresh_map(fbytes[f]) : keep[f];
			if (buf[f] == NULL)
				failed = 1;
		}
		for (t = 0; t < nt && !failed; t++) {
			J[t].r = rg;
			J[t].nr = nr;
			memcpy(J[t].buf, buf, sizeof(buf));
			J[t].total = total;
			J[t].part = t;
			J[t].parts = nt;
			J[t].failed = 0;
			started[t] = t > 0 && pthread_create(&th[t], NULL, copy_part, &J[t]) == 0;
		}
		for (t = 0; t < nt && !failed; t++)
			if (!started[t])
				copy_part(&J[t]);
		for (t = 1; t < nt && !failed; t++)
			if (started[t])
				pthread_join(th[t], NULL);
		for (t = 0; t < nt && !failed; t++)
			failed |= J[t].failed;
		secs[r] = bench_now() - t0;
		for (f = 0; f < NFIELDS && fresh; f++)
			if (buf[f] != NULL)
				munmap(buf[f], fbytes[f] > 0 ? fbytes[f] : 1);
		if (failed) {
			sm_error_set(&err, SM_EIO, "'%s': a copy failed", argv[1]);
			goto out;
		}
	}
	printf("{\"gas_cells\":%llu,\"bytes\":%llu,\"threads\":%u,\"buffers\":\"%s\","
	       "\"seconds\":[", (unsigned long long)s.header.npart_total[0],
	       (unsigned long long)total, nt, fresh ? "fresh" : "warm");
	for (r = 0; r < repeats; r++)
		printf("%s%.6f", r ? "," : "", secs[r]);
	qsort(secs, (size_t)repeats, sizeof(*secs), bench_cmp_double);
	printf("],\"median_s\":%.6f}\n", secs[repeats / 2]);
	rc = 0;
out:
	if (rc != 0)
		fprintf(stderr, "benchmark-copy: %s\n", err.msg);
	for (i = 0; fds != NULL && i < s.nfiles; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	for (f = 0; f < NFIELDS; f++)
		free(keep[f]);
	free(fds);
	free(rg);
	free(secs);
	sm_snapshot_release(&s);
	return rc;
}
