/*
 * What a CPython process's own allocators hand out, per stage (pydomains.c; `snapmem profile
 * --python-lines`): the quantity Python's tracemalloc counts, measured by the preload library
 * beside the process's allocated figures, so the two can be told apart (docs/PROFILE.md).
 */
#ifndef SM_PRELOAD_PYDOMAINS_H
#define SM_PRELOAD_PYDOMAINS_H

#include <stdint.h>

/* Turns the accounting on for this process (it starts at the program's first sm_preload_python). */
void sm__pydomains_enable(void);
/* With the GIL held. numpy_api: numpy's C-API table (its _ARRAY_API capsule's pointer) or NULL.
 * Wraps Python's allocator domains (once) and numpy's data handler (once numpy_api is given);
 * returns 1 (domains) | 2 (numpy's data) for what is counted from now on, 0 when not enabled. */
int sm__pydomains_start(void *const *numpy_api);
/* Stage boundaries, from the preload's marker entry points (no-ops until started). */
void sm__pydomains_begin(const char *id, int64_t instance);
void sm__pydomains_end(void);
/* The document's "python_allocators" object as JSON text (malloc'd), NULL when never started. */
char *sm__pydomains_json(void);
/* fork: the table's lock is held across it, so that the child's copy is whole */
void sm__pydomains_prefork(void);
void sm__pydomains_postfork(int child);

#endif
