/*
 * The error table's text and the helpers that fill an sm_error. See include/snapmem/error.h for
 * the contract: the library reports, the CLI prints.
 */
#include "snapmem/error.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

const char *sm_strerror(int code)
{
	switch (code) {
	case SM_OK:
		return "success";
#define XX(name, val, text) \
	case SM_##name:     \
		return text;
		SM_ERRNO_MAP(XX)
#undef XX
	}
	return "unknown error";
}

const char *sm_err_name(int code)
{
	switch (code) {
	case SM_OK:
		return "SM_OK";
#define XX(name, val, text) \
	case SM_##name:     \
		return "SM_" #name;
		SM_ERRNO_MAP(XX)
#undef XX
	}
	return "SM_EUNKNOWN";
}

void sm_error_clear(sm_error *err)
{
	if (err == NULL)
		return;
	memset(err, 0, sizeof(*err));
}

int sm_error_setv(sm_error *err, int code, const char *fmt, va_list ap)
{
	char *p;

	if (err == NULL)
		return code;
	err->code = code;
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	for (p = err->msg; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	return code;
}

int sm_error_set(sm_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sm_error_setv(err, code, fmt, ap);
	va_end(ap);
	return code;
}

int sm_exit_code(const sm_error *err)
{
	if (err == NULL || err->code == SM_OK)
		return 0;
	switch (err->code) {
	case SM_ENOMEM:
	case SM_ELIMIT:
		return 3;
	case SM_EINTR:
		return 128 + (err->signal > 0 ? err->signal : SIGINT);
	default:
		return 2;
	}
}
