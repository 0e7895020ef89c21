/*
 * lib-linkmode: a test program linked twice by the Makefile, against libsnapmem.a and against
 * libsnapmem.so (build/tests/progs/lib-linkmode and lib-linkmode-shared), so that test-profile can check
 * that both link modes measure the same: one stage with a tracked 4 MiB array and an untracked
 * 8 MiB malloc, written to argv[1]. Exit 0, or 3 when an allocation fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapmem/profiler.h"

int main(int argc, char **argv)
{
	sm_prof *prof = NULL;
	sm_error err = { 0 };
	int rc = 3;
	if (argc < 2 || sm_prof_create(NULL, &prof, &err) != 0)
		return 2;
	sm_prof_stage_begin(prof, "work", -1);
	char *t = sm_prof_alloc(prof, "tracked", 4u << 20, &err);
	char *volatile u = malloc(8u << 20);
	if (!t || !u)
		goto out;
	memset(t, 1, 4u << 20);
	memset(u, 2, 8u << 20);
	free(u);
	sm_prof_release(prof, t);
	sm_prof_stage_end(prof);
	rc = sm_prof_write_json(prof, argv[1], &err) == 0 ? 0 : 2;
out:
	sm_prof_free(prof);
	return rc;
}
