/*
 * snapmem error codes and error reports.
 *
 * Every library function that can fail returns 0 or a negative SM_E* code and, when given a
 * non-NULL sm_error, fills it with the code and one line of text naming the file, the object and
 * the fault (git style: lower case, no final full stop, subject quoted). The library never prints
 * and never exits; the CLI prints err.msg and maps the code to an exit status with sm_exit_code().
 * The codes come from one table (SM_ERRNO_MAP) that generates both the enum and the messages.
 */
#ifndef SNAPMEM_ERROR_H
#define SNAPMEM_ERROR_H

#include <stdarg.h>
#include <stdint.h>

#define SM_ERRNO_MAP(XX)                                                   \
	XX(EINVAL, -1, "invalid argument")                                 \
	XX(EIO, -2, "input/output error")                                  \
	XX(EFORMAT, -3, "malformed file")                                  \
	XX(ENOTFOUND, -4, "not found")                                     \
	XX(ENOMEM, -5, "out of memory")                                    \
	XX(EOVERFLOW, -6, "value too large")                               \
	XX(EEXIST, -7, "already exists")                                   \
	XX(ELIMIT, -8, "over the memory limit")                            \
	XX(EINTR, -9, "interrupted")                                       \
	XX(EUNSUPPORTED, -10, "not supported")

enum {
	SM_OK = 0,
#define XX(name, val, text) SM_##name = (val),
	SM_ERRNO_MAP(XX)
#undef XX
};

#define SM_ERROR_MSG_MAX 768

typedef struct sm_error {
	int code;                   /* 0 or an SM_E* code */
	char msg[SM_ERROR_MSG_MAX]; /* one line, no newline */
	uint64_t needed_bytes;      /* for SM_ENOMEM / SM_ELIMIT: the bytes that were needed, else 0 */
	int signal;                 /* for SM_EINTR: the signal number, else 0 */
} sm_error;

/* The fixed text of a code ("invalid argument"); "unknown error" for an unknown code. */
const char *sm_strerror(int code);

/* The symbolic name of a code ("SM_EINVAL"). */
const char *sm_err_name(int code);

/* Resets err to "no error". Accepts NULL. */
void sm_error_clear(sm_error *err);

/*
 * Records code and a printf-style message in err (when err is not NULL) and returns code, so that
 * `return sm_error_set(err, SM_EFORMAT, "'%s': ...", path);` reads naturally. A message that
 * already holds text is replaced. Newlines in the formatted text are replaced by spaces.
 */
int sm_error_set(sm_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int sm_error_setv(sm_error *err, int code, const char *fmt, va_list ap);

/* Exit status for a code under the command-line contract: 0 ok, 2 bad input, 3 memory, 128+sig. */
int sm_exit_code(const sm_error *err);

#endif
