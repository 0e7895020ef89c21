/*
 * libFuzzer target: the pipeline-description reader (sm_desc_parse: libyaml, the schema, the
 * expression parser and its name resolution, estimator/describe.c and expr.c), then, for a
 * description it accepts, the replay of it on the embedded TNG300-1 input (estimator/interp.c)
 * with its default options and over its variants (sm_est_variants).
 *
 * Contract checked: the reader returns 0 or a negative SM_E* with ONE line that, for a bad
 * description (SM_EFORMAT), starts with "fuzz.yaml:" and a line and column (the whole file's
 * faults, a NUL byte or its size, with "fuzz.yaml: " alone); an accepted description
 * replays to 0 or an error with a one-line message, never a crash, a hang on recursion, or a
 * figure beyond the estimate's own checks. The expression parser's depth is bounded (nested
 * parentheses, unary operators and conditionals), so deep inputs are refused, not recursed into.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapmem/describe.h"
#include "snapmem/estimator.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_err(const sm_error *err, int rc)
{
	if (rc >= 0 || err->code >= 0 || err->msg[0] == '\0' || strchr(err->msg, '\n') != NULL)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sm_pipeline_desc *d = NULL;
	sm_model_options o, *v = NULL;
	sm_est_input in;
	sm_estimate e;
	sm_error err = {0};
	size_t n = 0, i;
	int rc, line = 0, col = 0;

	rc = sm_desc_parse("fuzz.yaml", (const char *)data, size, &d, &err);
	if (rc != 0) {
		check_err(&err, rc);
		if (d != NULL)
			abort();
		if (rc == SM_EFORMAT && strncmp(err.msg, "fuzz.yaml", 9) != 0)
			abort();
		/* "fuzz.yaml:LINE:COL: ..." or, for the whole file (a NUL byte), "fuzz.yaml: ..." */
		if (rc == SM_EFORMAT && err.msg[9] == ':' && err.msg[10] != ' ' &&
		    (sscanf(err.msg + 10, "%d:%d:", &line, &col) != 2 || line < 1 || col < 1))
			abort();
		return 0;
	}
	if (d == NULL || sm_desc_id(d) == NULL)
		abort();
	memset(&in, 0, sizeof(in));
	sm_model_options_init(&o);
	o.pipeline = d;
	if (sm_est_input_embedded(&in, &o, &err) != 0)
		abort();
	rc = sm_estimate_compute(&in, &o, &e, &err);
	if (rc == 0) {
		if (e.nstages > 16 || e.peak_resident < e.baseline_resident)
			abort();
		sm_estimate_release(&e);
	} else {
		check_err(&err, rc);
	}
	sm_error_clear(&err);
	rc = sm_est_variants(&o, 1, &v, &n, &err);
	if (rc == 0) {
		if (n > 64)
			abort();
		for (i = 0; i < n && i < 8; i++) {
			sm_error e2 = {0};

			rc = sm_estimate_compute(&in, &v[i], &e, &e2);
			if (rc == 0)
				sm_estimate_release(&e);
			else
				check_err(&e2, rc);
		}
		free(v);
	} else {
		check_err(&err, rc);
	}
	sm_est_input_release(&in);
	sm_desc_free(d);
	return 0;
}
