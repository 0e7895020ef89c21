/*
 * The model options (include/snapmem/model.h): every switch the pipeline has (docs/MODEL.md
 * "Switches"), their defaults, and the one parser shared by `run`, `estimate` and `tradeoff`
 * (sm_model_option_apply), so that the three subcommands cannot drift apart. Values are checked
 * here and answered with one line naming the option and the offending text.
 */
#include <stdio.h>
#include <string.h>

#include "snapmem/model.h"
#include "snapmem/units.h"

#define OPT(name) "--" name

void sm_model_options_init(sm_model_options *o)
{
	memset(o, 0, sizeof(*o));
	o->positions = SM_DTYPE_F32;
	o->select = SM_SELECT_INDEX;
	o->temperature = SM_TEMP_IN_MEMORY;
	o->stream_block = SM_MODEL_STREAM_BLOCK_DEFAULT;
	o->halos = -1;
	o->mass_min = SM_MODEL_MASS_MIN_DEFAULT;
	o->ranks = 1;
	o->sphere_cells = 0;
	o->calibrate[0] = '\0';
}

const char *sm_model_options_usage(void)
{
	return "model options:\n"
	       "  --positions " SM_MODEL_POSITIONS_CHOICES
	       "   dtype of Coordinates in memory (default " SM_DTYPE_NAME_F32 ")\n"
	       "  --select " SM_MODEL_SELECT_CHOICES
	       "           sphere selection: uniform grid index (default) or the\n"
	       "                                notebook's one-byte-per-cell mask per halo\n"
	       "  --temperature " SM_MODEL_TEMPERATURE_CHOICES "\n"
	       "                                load the three gas fields whole (default) or in blocks\n"
	       "  --stream-block N              cells per streaming block (default 131072)\n"
	       "  --halos N                     the N most massive halos\n"
	       "  --mass-min MSUN               halos with M200c strictly above (default 1e14)\n"
	       "  --mpi                         distributed: ranks share the chunk files and stream\n"
	       "                                their cells past a halo index (docs/MPI.md)\n"
	       "  --ranks R                     MPI ranks (implies --mpi when > 1); figures per rank\n"
	       "  --sphere-cells N              cells within 2 R200 of the largest halo (override)\n"
	       "  --calibrate RUNDIR            sphere cells measured by an earlier run (memory.json)\n";
}

int sm_model_option_apply(sm_model_options *o, const char *opt, const char *value, sm_error *err)
{
	uint64_t u;
	int rc;

	if (opt == NULL)
		return 0;
	if (strcmp(opt, OPT(SM_OPT_MPI)) == 0) {
		o->mpi = 1;
		o->given |= SM_MODEL_GIVEN_MPI | SM_MODEL_GIVEN_MPI_FLAG;
		return 2;
	}
	if (strcmp(opt, OPT(SM_OPT_POSITIONS)) != 0 && strcmp(opt, OPT(SM_OPT_SELECT)) != 0 &&
	    strcmp(opt, OPT(SM_OPT_TEMPERATURE)) != 0 && strcmp(opt, OPT(SM_OPT_STREAM_BLOCK)) != 0 &&
	    strcmp(opt, OPT(SM_OPT_HALOS)) != 0 && strcmp(opt, OPT(SM_OPT_MASS_MIN)) != 0 &&
	    strcmp(opt, OPT(SM_OPT_RANKS)) != 0 && strcmp(opt, OPT(SM_OPT_SPHERE_CELLS)) != 0 &&
	    strcmp(opt, OPT(SM_OPT_CALIBRATE)) != 0)
		return 0;
	if (value == NULL)
		return sm_error_set(err, SM_EINVAL, "%s: missing value", opt);

	if (strcmp(opt, OPT(SM_OPT_POSITIONS)) == 0) {
		if (sm_model_positions_parse(value, &o->positions) != 0)
			return sm_error_set(err, SM_EINVAL, "%s: '%s' is not %s or %s", opt, value,
					    SM_DTYPE_NAME_F32, SM_DTYPE_NAME_F64);
		o->given |= SM_MODEL_GIVEN_POSITIONS;
	} else if (strcmp(opt, OPT(SM_OPT_SELECT)) == 0) {
		if (sm_model_select_parse(value, &o->select) != 0)
			return sm_error_set(err, SM_EINVAL, "%s: '%s' is not %s or %s", opt, value,
					    SM_SELECT_NAME_INDEX, SM_SELECT_NAME_MASK);
		o->given |= SM_MODEL_GIVEN_SELECT;
	} else if (strcmp(opt, OPT(SM_OPT_TEMPERATURE)) == 0) {
		if (sm_model_temperature_parse(value, &o->temperature) != 0)
			return sm_error_set(err, SM_EINVAL, "%s: '%s' is not %s or %s", opt, value,
					    SM_TEMP_NAME_IN_MEMORY, SM_TEMP_NAME_STREAMING);
		o->given |= SM_MODEL_GIVEN_TEMPERATURE;
	} else if (strcmp(opt, OPT(SM_OPT_STREAM_BLOCK)) == 0) {
		if ((rc = sm_parse_u64(opt, value, &u, err)) != 0)
			return rc;
		if (u == 0)
			return sm_error_set(err, SM_EINVAL, "%s: must be at least 1 cell", opt);
		o->stream_block = u;
		o->given |= SM_MODEL_GIVEN_STREAM_BLOCK;
	} else if (strcmp(opt, OPT(SM_OPT_HALOS)) == 0) {
		if ((rc = sm_parse_u64(opt, value, &u, err)) != 0)
			return rc;
		if (u > (uint64_t)INT64_MAX)
			return sm_error_set(err, SM_EOVERFLOW, "%s: '%s' is too large", opt, value);
		o->halos = (int64_t)u;
	} else if (strcmp(opt, OPT(SM_OPT_MASS_MIN)) == 0) {
		double d;

		if ((rc = sm_parse_double(opt, value, 0.0, 1e30, &d, err)) != 0)
			return rc;
		o->mass_min = d;
		o->halos = -1;
	} else if (strcmp(opt, OPT(SM_OPT_RANKS)) == 0) {
		if ((rc = sm_parse_u64(opt, value, &u, err)) != 0)
			return rc;
		if (u == 0 || u > SM_MODEL_MAX_RANKS)
			return sm_error_set(err, SM_EINVAL, "%s: '%s' is not between 1 and %u", opt,
					    value, SM_MODEL_MAX_RANKS);
		o->ranks = (uint32_t)u;
		o->given |= SM_MODEL_GIVEN_RANKS;
		if (u > 1)
			o->given |= SM_MODEL_GIVEN_MPI;
	} else if (strcmp(opt, OPT(SM_OPT_SPHERE_CELLS)) == 0) {
		if ((rc = sm_parse_u64(opt, value, &u, err)) != 0)
			return rc;
		if (u == 0)
			return sm_error_set(err, SM_EINVAL, "%s: must be at least 1 cell", opt);
		o->sphere_cells = u;
	} else { /* --calibrate */
		size_t n = strlen(value);

		if (n == 0)
			return sm_error_set(err, SM_EINVAL, "%s: empty run directory", opt);
		if (n >= sizeof(o->calibrate))
			return sm_error_set(err, SM_EINVAL, "%s: path is longer than %zu bytes", opt,
					    sizeof(o->calibrate) - 1);
		memcpy(o->calibrate, value, n + 1);
	}
	return 1;
}

const char *sm_model_strategy_switch(const sm_model_options *o, char *buf, size_t len)
{
	int flag = (o->given & SM_MODEL_GIVEN_MPI_FLAG) != 0;
	int ranks = (o->given & SM_MODEL_GIVEN_RANKS) != 0 && o->ranks > 1;

	if (ranks)
		snprintf(buf, len, "%s--ranks %u", flag ? "--mpi " : "", o->ranks);
	else
		snprintf(buf, len, "--mpi");
	return buf;
}

int sm_model_options_check(sm_model_options *o, sm_error *err)
{
	char sw[48];

	if (o->ranks > 1)
		o->mpi = 1;
	if (o->mpi && o->select == SM_SELECT_MASK)
		return sm_error_set(err, SM_EINVAL, "--select mask: does not apply with %s (the "
				    "distributed run finds each cell's halos through a halo index)",
				    sm_model_strategy_switch(o, sw, sizeof(sw)));
	if (o->mpi && o->temperature == SM_TEMP_STREAMING)
		return sm_error_set(err, SM_EINVAL, "--temperature streaming: does not apply with "
				    "%s (the distributed run always streams its cells in blocks)",
				    sm_model_strategy_switch(o, sw, sizeof(sw)));
	return 0;
}

int sm_model_option_set(sm_model_options *o, const char *setting, sm_error *err)
{
	const char *eq = strchr(setting, '=');
	size_t nlen, len = strlen(setting), used = 0, keep = 0;
	char buf[SM_MODEL_SET_MAX];
	const char *p;

	if (eq == NULL || eq == setting || eq[1] == '\0')
		return sm_error_set(err, SM_EINVAL, "--set '%s': NAME=VALUE expected", setting);
	nlen = (size_t)(eq - setting);
	/* the others, then this one last */
	for (p = o->set; *p != '\0'; p += strlen(p) + 1) {
		size_t l = strlen(p);

		if (strncmp(p, setting, nlen + 1) == 0)
			continue;
		memcpy(buf + keep, p, l + 1);
		keep += l + 1;
	}
	used = keep;
	if (used + len + 2 > sizeof(o->set))
		return sm_error_set(err, SM_EINVAL, "--set '%s': the settings exceed %zu bytes",
				    setting, sizeof(o->set) - 1);
	memcpy(buf + used, setting, len + 1);
	used += len + 1;
	buf[used] = '\0';
	memcpy(o->set, buf, used + 1);
	return 0;
}

const char *sm_model_option_get(const sm_model_options *o, const char *name)
{
	size_t n = strlen(name);
	const char *p;

	for (p = o->set; *p != '\0'; p += strlen(p) + 1)
		if (strncmp(p, name, n) == 0 && p[n] == '=')
			return p + n + 1;
	return NULL;
}
