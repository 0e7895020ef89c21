/*
 * Pipeline descriptions (docs/PIPELINES.md): a pipeline's stages, arrays, frees, per-halo loop and
 * option variants as a YAML file, read here and replayed by the estimator on its simulated heap
 * (sm_estimate_compute with sm_model_options.pipeline). The radial-profile pipeline is one such
 * description, estimator/pipelines/radial-profiles.yaml, compiled into the library as the default.
 *
 * Every error is one line "FILE:LINE:COL: what is wrong" (SM_EFORMAT for a bad description, SM_EIO
 * or SM_ENOTFOUND for a file that cannot be read, SM_ENOMEM). A parsed description is immutable and
 * owns every string the estimates made from it point to: keep it until they are released.
 */
#ifndef SNAPMEM_DESCRIBE_H
#define SNAPMEM_DESCRIBE_H

#include <stddef.h>
#include <stdint.h>

#include "snapmem/error.h"

typedef struct sm_pipeline_desc sm_pipeline_desc;

/* Parses len bytes of text; file is the name its errors give. 0 or SM_E*. */
int sm_desc_parse(const char *file, const char *text, size_t len, sm_pipeline_desc **out,
		  sm_error *err);

/* Reads and parses the file at path (at most 1 MiB). 0 or SM_E*. */
int sm_desc_load(const char *path, sm_pipeline_desc **out, sm_error *err);

/* The embedded radial-profiles description, parsed once (thread-safe); never freed. 0 or SM_E*. */
int sm_desc_default(const sm_pipeline_desc **out, sm_error *err);

/* Its text, as compiled in (estimator/pipelines/radial-profiles.yaml). */
const char *sm_desc_default_text(void);

void sm_desc_free(sm_pipeline_desc *d);

const char *sm_desc_id(const sm_pipeline_desc *d);
const char *sm_desc_title(const sm_pipeline_desc *d);
const char *sm_desc_file(const sm_pipeline_desc *d);
/* 1 for the embedded default (or a description with its id, "radial-profiles"). */
int sm_desc_is_default(const sm_pipeline_desc *d);

/* The declared options, in the order written. */
typedef struct sm_desc_option_info {
	const char *name;
	int numeric;                 /* 1: an integer option; 0: one of values */
	const char *const *values;   /* enumerated: nvalues words */
	size_t nvalues;
	const char *def;             /* the default as written */
} sm_desc_option_info;

size_t sm_desc_noptions(const sm_pipeline_desc *d);
int sm_desc_option(const sm_pipeline_desc *d, size_t i, sm_desc_option_info *out);
/* 1 when the description declares an option of that name. */
int sm_desc_has_option(const sm_pipeline_desc *d, const char *name);

/*
 * Checks one "NAME=VALUE" setting (`--set`) against d: the option must be declared and the value
 * one of its values (an integer within its bounds for a numeric one). 0 or SM_EINVAL, one line:
 * "--set 'foo=1': pipeline 'radial-profiles' declares no option 'foo'".
 */
int sm_desc_check_setting(const sm_pipeline_desc *d, const char *setting, sm_error *err);

#endif
