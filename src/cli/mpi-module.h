/*
 * The interface between the snapmem binary and its MPI module, libsnapmem-mpi.so
 * (src/mpi/module.c, loaded by src/cli/mpi.c for `run --mpi` only; docs/MPI.md). The module
 * exports one function, sm_mpi_module, whose table says which version of this interface it
 * speaks; a binary refuses a module of another version.
 */
#ifndef SM_CLI_MPI_MODULE_H
#define SM_CLI_MPI_MODULE_H

#include <stddef.h>

struct sm_pipeline_comm;

#define SM_MPI_MODULE_VERSION 1
#define SM_MPI_MODULE_FILE "libsnapmem-mpi.so"

struct sm_mpi_module {
	int version; /* SM_MPI_MODULE_VERSION */
	/* MPI_Init (once) and the collectives over MPI_COMM_WORLD into *comm; *sharers the ranks of
	 * this node whose CPU sets overlap this rank's (itself included, 1 when it cannot tell),
	 * *idle_cpus the node's CPUs no rank of the node may run on. 0, or -1 when MPI_Init failed. */
	int (*init)(struct sm_pipeline_comm *comm, unsigned *sharers, unsigned *idle_cpus);
	/* MPI_Finalize when init started MPI; otherwise nothing. */
	void (*finalize)(void);
	/* This rank's host name (MPI_Get_processor_name) into buf: 0, or -1 without one. */
	int (*host)(char *buf, size_t len);
};

const struct sm_mpi_module *sm_mpi_module(void);

#endif
