/*
 * The model contract's vocabularies (include/snapmem/model.h): the stage ids, the array names and
 * the option values, each spelled once, with the one name and the one parse of every value. The
 * element types' names are the snapshot layer's (sm_dtype_name, sm_dtype_from_name); --positions
 * accepts two of them.
 */
#include <string.h>

#include "snapmem/model.h"

#define AS_ENTRY(name) name,

static const char *const stages[] = {SM_MODEL_STAGE_LIST(AS_ENTRY)};
static const char *const arrays[] = {SM_MODEL_ARRAY_LIST(AS_ENTRY)};

static int in_list(const char *const *list, size_t n, const char *s)
{
	size_t i;

	if (s == NULL)
		return 0;
	for (i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return 1;
	return 0;
}

int sm_model_stage_known(const char *id)
{
	return in_list(stages, sizeof(stages) / sizeof(stages[0]), id);
}

int sm_model_stage_per_halo(const char *id)
{
	static const char *const per_halo[] = {SM_STAGE_SELECT_SPHERE, SM_STAGE_RADIAL_DISTANCE,
					       SM_STAGE_MASK_ARRAYS, SM_STAGE_HISTOGRAM_WRITE};

	return in_list(per_halo, sizeof(per_halo) / sizeof(per_halo[0]), id);
}

int sm_model_array_known(const char *name)
{
	return in_list(arrays, sizeof(arrays) / sizeof(arrays[0]), name);
}

const char *sm_model_positions_name(sm_dtype t)
{
	return t == SM_DTYPE_F32 || t == SM_DTYPE_F64 ? sm_dtype_name(t) : NULL;
}

int sm_model_positions_parse(const char *s, sm_dtype *out)
{
	sm_dtype t;

	if (sm_dtype_from_name(s, &t) != 0 || (t != SM_DTYPE_F32 && t != SM_DTYPE_F64))
		return SM_EINVAL;
	*out = t;
	return 0;
}

const char *sm_model_select_name(sm_select s)
{
	return s == SM_SELECT_INDEX ? SM_SELECT_NAME_INDEX
	       : s == SM_SELECT_MASK ? SM_SELECT_NAME_MASK : NULL;
}

int sm_model_select_parse(const char *s, sm_select *out)
{
	if (s != NULL && strcmp(s, SM_SELECT_NAME_INDEX) == 0)
		*out = SM_SELECT_INDEX;
	else if (s != NULL && strcmp(s, SM_SELECT_NAME_MASK) == 0)
		*out = SM_SELECT_MASK;
	else
		return SM_EINVAL;
	return 0;
}

const char *sm_model_temperature_name(sm_temp_mode t)
{
	return t == SM_TEMP_IN_MEMORY ? SM_TEMP_NAME_IN_MEMORY
	       : t == SM_TEMP_STREAMING ? SM_TEMP_NAME_STREAMING : NULL;
}

int sm_model_temperature_parse(const char *s, sm_temp_mode *out)
{
	if (s != NULL && strcmp(s, SM_TEMP_NAME_IN_MEMORY) == 0)
		*out = SM_TEMP_IN_MEMORY;
	else if (s != NULL && strcmp(s, SM_TEMP_NAME_STREAMING) == 0)
		*out = SM_TEMP_STREAMING;
	else
		return SM_EINVAL;
	return 0;
}
