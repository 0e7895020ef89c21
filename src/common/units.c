/*
 * Command-line numbers and sizes, and IEC formatting. Parsing is strict on purpose: a size that
 * half-parses ("12Gx") would silently plan a run for the wrong node, and a size without a unit
 * ("256": bytes? GiB?) is refused with a hint rather than guessed.
 */
#include "snapmem/units.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sm_mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
	if (a != 0 && b > UINT64_MAX / a)
		return SM_EOVERFLOW;
	*out = a * b;
	return 0;
}

int sm_add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
	if (b > UINT64_MAX - a)
		return SM_EOVERFLOW;
	*out = a + b;
	return 0;
}

static int unit_shift(const char *u, unsigned *shift)
{
	static const char units[] = "KMGTP";
	const char *p;

	if (*u == '\0') {
		*shift = 0;
		return 0;
	}
	if ((u[0] == 'B' || u[0] == 'b') && u[1] == '\0') {
		*shift = 0;
		return 0;
	}
	p = strchr(units, toupper((unsigned char)u[0]));
	if (p == NULL || u[0] == '\0')
		return -1;
	*shift = 10u * (unsigned)(p - units + 1);
	u++;
	if (*u == 'i')
		u++;
	if (*u == 'B' || *u == 'b')
		u++;
	return *u == '\0' ? 0 : -1;
}

int sm_parse_size(const char *what, const char *s, uint64_t *out, sm_error *err)
{
	const char *p = s;
	const char *num_end;
	unsigned shift = 0;
	int seen_digit = 0, seen_dot = 0;

	if (s == NULL || *s == '\0')
		return sm_error_set(err, SM_EINVAL, "%s: empty size", what);
	while (isdigit((unsigned char)*p) || (*p == '.' && !seen_dot)) {
		if (*p == '.')
			seen_dot = 1;
		else
			seen_digit = 1;
		p++;
	}
	num_end = p;
	if (seen_digit && *p == '\0')
		return sm_error_set(err, SM_EINVAL, "%s: '%s' has no unit: %s what? e.g. %sG", what, s,
				    s, s);
	if (!seen_digit || unit_shift(p, &shift) != 0)
		return sm_error_set(err, SM_EINVAL,
				    "%s: '%s' is not a size (a number and a unit: 512G, 1.5TiB, 64MiB, 4096B)",
				    what, s);
	if (seen_dot && shift == 0)
		return sm_error_set(err, SM_EINVAL,
				    "%s: '%s' is a fraction of a byte (fractions need K, M, G, T or P: 1.5TiB)",
				    what, s);
	if (!seen_dot) {
		uint64_t v = 0;
		for (p = s; p < num_end; p++) {
			if (sm_mul_u64(v, 10, &v) != 0 || sm_add_u64(v, (uint64_t)(*p - '0'), &v) != 0)
				goto overflow;
		}
		if (shift > 0 && v > (UINT64_MAX >> shift))
			goto overflow;
		*out = v << shift;
		return 0;
	} else {
		char buf[64];
		double d;
		size_t n = (size_t)(num_end - s);

		if (n >= sizeof(buf))
			goto overflow;
		memcpy(buf, s, n);
		buf[n] = '\0';
		d = strtod(buf, NULL) * ldexp(1.0, (int)shift);
		if (!(d < 18446744073709551616.0))
			goto overflow;
		*out = (uint64_t)d;
		return 0;
	}
overflow:
	return sm_error_set(err, SM_EOVERFLOW, "%s: size '%s' does not fit in 64 bits", what, s);
}

int sm_parse_u64(const char *what, const char *s, uint64_t *out, sm_error *err)
{
	const char *p;
	uint64_t v = 0;

	if (s == NULL || *s == '\0')
		return sm_error_set(err, SM_EINVAL, "%s: empty number", what);
	for (p = s; isdigit((unsigned char)*p); p++) {
		if (sm_mul_u64(v, 10, &v) != 0 || sm_add_u64(v, (uint64_t)(*p - '0'), &v) != 0)
			return sm_error_set(err, SM_EOVERFLOW, "%s: '%s' does not fit in 64 bits",
					    what, s);
	}
	if (p == s)
		goto scientific;
	if (*p == '\0') {
		*out = v;
		return 0;
	}
scientific:
	/* "1e7", "3e6", "2.5e3": accepted when the value is a whole number below 2^53. */
	{
		char *end;
		double d;

		if (*s == '-' || *s == '+' || strspn(s, "0123456789.eE+-") != strlen(s))
			goto bad;
		errno = 0;
		d = strtod(s, &end);
		if (*end != '\0' || errno != 0 || !isfinite(d) || d < 0 || d != floor(d))
			goto bad;
		if (d >= 9007199254740992.0)
			return sm_error_set(err, SM_EOVERFLOW, "%s: '%s' is too large", what, s);
		*out = (uint64_t)d;
		return 0;
	}
bad:
	return sm_error_set(err, SM_EINVAL, "%s: '%s' is not a non-negative whole number", what, s);
}

int sm_parse_double(const char *what, const char *s, double min, double max, double *out,
		    sm_error *err)
{
	char *end;
	double d;

	if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
		return sm_error_set(err, SM_EINVAL, "%s: empty number", what);
	errno = 0;
	d = strtod(s, &end);
	if (*end != '\0' || !isfinite(d) || errno == ERANGE)
		return sm_error_set(err, SM_EINVAL, "%s: '%s' is not a finite number", what, s);
	if (d < min || d > max)
		return sm_error_set(err, SM_EINVAL, "%s: %s is outside [%g, %g]", what, s, min, max);
	*out = d;
	return 0;
}

char *sm_format_iec(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	double v = (double)bytes;
	int u = 0;

	while (v >= 1024.0 && u < 6) {
		v /= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
	else
		snprintf(buf, len, "%.2f %s", v, units[u]);
	return buf;
}

char *sm_format_iec_signed(int64_t bytes, char *buf, size_t len)
{
	uint64_t mag = bytes < 0 ? (uint64_t)(-(bytes + 1)) + 1 : (uint64_t)bytes;
	char tmp[48];

	sm_format_iec(mag, tmp, sizeof(tmp));
	snprintf(buf, len, "%s%s", bytes < 0 ? "-" : "+", tmp);
	return buf;
}

char *sm_shell_quote(const char *s, int always)
{
	size_t n = 0, i;
	int bare = s[0] != '\0' && !always;
	char *q, *p;

	for (i = 0; s[i] != '\0'; i++) {
		n += s[i] == '\'' ? 4 : 1;
		if (strchr("_./:=@%+,-", s[i]) == NULL && !(s[i] >= 'a' && s[i] <= 'z') &&
		    !(s[i] >= 'A' && s[i] <= 'Z') && !(s[i] >= '0' && s[i] <= '9'))
			bare = 0;
	}
	q = malloc(n + 3);
	if (q == NULL)
		return NULL;
	if (bare) {
		memcpy(q, s, i + 1);
		return q;
	}
	p = q;
	*p++ = '\'';
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] == '\'') {
			memcpy(p, "'\\''", 4);
			p += 4;
		} else {
			*p++ = s[i];
		}
	}
	*p++ = '\'';
	*p = '\0';
	return q;
}

double sm_gib(uint64_t bytes)
{
	return (double)bytes / 1073741824.0;
}
