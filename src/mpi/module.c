/*
 * libsnapmem-mpi.so, snapmem's MPI module (docs/MPI.md): MPI_Init/Finalize and the
 * sm_pipeline_comm callbacks over MPI_COMM_WORLD for `snapmem run --mpi`, loaded by the binary
 * (src/cli/mpi.c) only when a run asks for MPI, so that every other command starts without Open
 * MPI's seven libraries (libmpi, open-rte, open-pal, hwloc, udev and libevent twice: 80 of the
 * 660 page faults and 4.5-5.7 ms of a 600-chunk estimate's 26-28 ms here). Only this file
 * includes <mpi.h>; the module needs nothing of snapmem's but its headers (sm_mpi_module is its
 * one symbol).
 *
 * MPI errors keep MPI's default handler (MPI_ERRORS_ARE_FATAL): a failed collective aborts the
 * job rather than leaving a rank waiting. Large buffers are sent in pieces of at most 1 GiB so
 * that counts fit MPI's int.
 */
#include <limits.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mpi.h>

#include "cli/mpi-module.h"
#include "snapmem/error.h"
#include "snapmem/pipeline.h"

#define PIECE_BYTES ((size_t)1 << 30)

static int started;

static int sum_any(void *buf, size_t n, size_t esz, MPI_Datatype t)
{
	int rank;
	size_t per = PIECE_BYTES / esz, off;

	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	for (off = 0; off < n; off += per) {
		int cnt = (int)(n - off < per ? n - off : per);
		char *p = (char *)buf + off * esz;
		int rc = rank == 0 ? MPI_Reduce(MPI_IN_PLACE, p, cnt, t, MPI_SUM, 0, MPI_COMM_WORLD)
				   : MPI_Reduce(p, NULL, cnt, t, MPI_SUM, 0, MPI_COMM_WORLD);

		if (rc != MPI_SUCCESS)
			return SM_EIO;
	}
	return 0;
}

static int mpi_sum_i64(void *ctx, int64_t *buf, size_t n)
{
	(void)ctx;
	return sum_any(buf, n, sizeof(int64_t), MPI_INT64_T);
}

static int mpi_sum_f64(void *ctx, double *buf, size_t n)
{
	(void)ctx;
	return sum_any(buf, n, sizeof(double), MPI_DOUBLE);
}

static int mpi_agree(void *ctx, int code, int *fail_rank, int *fail_code)
{
	int size, i, *all;

	(void)ctx;
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	all = malloc((size_t)size * sizeof(*all));
	if (all == NULL)
		return SM_ENOMEM;
	if (MPI_Allgather(&code, 1, MPI_INT, all, 1, MPI_INT, MPI_COMM_WORLD) != MPI_SUCCESS) {
		free(all);
		return SM_EIO;
	}
	*fail_rank = -1;
	*fail_code = 0;
	for (i = 0; i < size; i++) {
		if (all[i] != 0) {
			*fail_rank = i;
			*fail_code = all[i];
			break;
		}
	}
	free(all);
	return 0;
}

static int mpi_bcast(void *ctx, int root, void *buf, size_t len)
{
	size_t off;

	(void)ctx;
	for (off = 0; off < len; off += PIECE_BYTES) {
		int cnt = (int)(len - off < PIECE_BYTES ? len - off : PIECE_BYTES);

		if (MPI_Bcast((char *)buf + off, cnt, MPI_BYTE, root, MPI_COMM_WORLD) != MPI_SUCCESS)
			return SM_EIO;
	}
	return 0;
}

static int mpi_gather(void *ctx, const void *buf, size_t len, void ***blobs, size_t **lens)
{
	int rank, size, i, *cnt = NULL, *disp = NULL, mine;
	char *all = NULL;
	long long total = 0;
	void **b = NULL;
	size_t *l = NULL;

	(void)ctx;
	*blobs = NULL;
	*lens = NULL;
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	/* Per-rank figures are small JSON texts (kilobytes); one too large to add up is sent empty
	 * (every rank must enter the collectives whatever its blob). */
	mine = len > (size_t)INT_MAX / (size_t)size ? 0 : (int)len;
	if (rank == 0) {
		cnt = calloc((size_t)size, sizeof(*cnt));
		disp = calloc((size_t)size, sizeof(*disp));
		b = calloc((size_t)size, sizeof(*b));
		l = calloc((size_t)size, sizeof(*l));
		/* A rank that cannot take part would leave the others waiting: abort the job. */
		if (cnt == NULL || disp == NULL || b == NULL || l == NULL)
			MPI_Abort(MPI_COMM_WORLD, 3);
	}
	if (MPI_Gather(&mine, 1, MPI_INT, cnt, 1, MPI_INT, 0, MPI_COMM_WORLD) != MPI_SUCCESS)
		return SM_EIO;
	if (rank == 0) {
		for (i = 0; i < size; i++) {
			disp[i] = (int)total;
			total += cnt[i];
		}
		all = malloc((size_t)total + 1);
		if (all == NULL)
			MPI_Abort(MPI_COMM_WORLD, 3);
	}
	if (MPI_Gatherv(buf, mine, MPI_BYTE, all, cnt, disp, MPI_BYTE, 0, MPI_COMM_WORLD) !=
	    MPI_SUCCESS)
		return SM_EIO;
	if (rank == 0) {
		for (i = 0; i < size; i++) {
			b[i] = malloc((size_t)cnt[i] + 1);
			if (b[i] == NULL)
				MPI_Abort(MPI_COMM_WORLD, 3);
			memcpy(b[i], all + disp[i], (size_t)cnt[i]);
			((char *)b[i])[cnt[i]] = '\0';
			l[i] = (size_t)cnt[i];
		}
		*blobs = b;
		*lens = l;
		free(all);
		free(cnt);
		free(disp);
	}
	return 0;
}

/* The ranks on this node whose CPU sets overlap this rank's, itself included, into *sharers (1
 * when it cannot tell), and the node's online CPUs no rank of the node may run on into *idle:
 * Open MPI binds each of 2 ranks or fewer to a core of its own and leaves more ranks, or
 * --bind-to none, on every CPU. */
static void node_cpus(unsigned *sharers, unsigned *idle)
{
	MPI_Comm node = MPI_COMM_NULL;
	cpu_set_t mine, any, *all = NULL;
	int n = 0, ok, all_ok = 0, i;
	long online = sysconf(_SC_NPROCESSORS_ONLN);

	*sharers = 1;
	*idle = 0;
	CPU_ZERO(&mine);
	ok = sched_getaffinity(0, sizeof(mine), &mine) == 0;
	if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) !=
	    MPI_SUCCESS)
		return;
	if (MPI_Comm_size(node, &n) != MPI_SUCCESS || n < 1)
		goto out;
	all = calloc((size_t)n, sizeof(*all));
	ok = ok && all != NULL;
	/* every rank of the node takes part in both collectives, or none in the second */
	if (MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, node) != MPI_SUCCESS || !all_ok ||
	    MPI_Allgather(&mine, (int)sizeof(mine), MPI_BYTE, all, (int)sizeof(mine), MPI_BYTE,
			  node) != MPI_SUCCESS)
		goto out;
	*sharers = 0;
	CPU_ZERO(&any);
	for (i = 0; i < n; i++) {
		cpu_set_t both;

		CPU_AND(&both, &mine, &all[i]);
		*sharers += CPU_COUNT(&both) > 0;
		CPU_OR(&any, &any, &all[i]);
	}
	if (*sharers == 0)
		*sharers = 1;
	if (online > CPU_COUNT(&any))
		*idle = (unsigned)(online - CPU_COUNT(&any));
out:
	free(all);
	MPI_Comm_free(&node);
}

static int mod_init(sm_pipeline_comm *comm, unsigned *sharers, unsigned *idle_cpus)
{
	int flag = 0;

	memset(comm, 0, sizeof(*comm));
	MPI_Initialized(&flag);
	if (!flag) {
		if (MPI_Init(NULL, NULL) != MPI_SUCCESS)
			return -1;
		started = 1;
	}
	MPI_Comm_rank(MPI_COMM_WORLD, &comm->rank);
	MPI_Comm_size(MPI_COMM_WORLD, &comm->size);
	node_cpus(sharers, idle_cpus);
	comm->sum_i64 = mpi_sum_i64;
	comm->sum_f64 = mpi_sum_f64;
	comm->agree = mpi_agree;
	comm->bcast = mpi_bcast;
	comm->gather = mpi_gather;
	return 0;
}

static void mod_finalize(void)
{
	int fin = 0;

	if (!started)
		return;
	MPI_Finalized(&fin);
	if (!fin)
		MPI_Finalize();
	started = 0;
}

static int mod_host(char *buf, size_t len)
{
	char name[MPI_MAX_PROCESSOR_NAME + 1];
	int n = 0;

	if (len == 0 || MPI_Get_processor_name(name, &n) != MPI_SUCCESS || n <= 0)
		return -1;
	name[n < MPI_MAX_PROCESSOR_NAME ? n : MPI_MAX_PROCESSOR_NAME] = '\0';
	snprintf(buf, len, "%s", name);
	return 0;
}

static const struct sm_mpi_module module = {SM_MPI_MODULE_VERSION, mod_init, mod_finalize,
					     mod_host};

const struct sm_mpi_module *sm_mpi_module(void)
{
	return &module;
}
