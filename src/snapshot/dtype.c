/*
 * Element types: sizes, numpy names (the one namer and parser of an element type's spelling:
 * every other part, the model's --positions included, goes through sm_dtype_name and
 * sm_dtype_from_name), and the mapping to and from HDF5 types. The on-disk mapping covers integers
 * of 1, 4 and 8 bytes and IEEE floats of 4 and 8 bytes; anything else is NONE and the callers
 * report it as a format error.
 */
#include <string.h>

#include "snapshot/snapshot-internal.h"

static const struct {
	sm_dtype t;
	size_t size;
	const char *name;
} table[] = {
	{SM_DTYPE_NONE, 0, SM_DTYPE_NAME_NONE}, {SM_DTYPE_U8, 1, SM_DTYPE_NAME_U8},
	{SM_DTYPE_I32, 4, SM_DTYPE_NAME_I32},   {SM_DTYPE_U32, 4, SM_DTYPE_NAME_U32},
	{SM_DTYPE_I64, 8, SM_DTYPE_NAME_I64},   {SM_DTYPE_U64, 8, SM_DTYPE_NAME_U64},
	{SM_DTYPE_F32, 4, SM_DTYPE_NAME_F32},   {SM_DTYPE_F64, 8, SM_DTYPE_NAME_F64},
};

#define NTABLE (sizeof(table) / sizeof(table[0]))

size_t sm_dtype_size(sm_dtype t)
{
	size_t i;

	for (i = 0; i < NTABLE; i++)
		if (table[i].t == t)
			return table[i].size;
	return 0;
}

const char *sm_dtype_name(sm_dtype t)
{
	size_t i;

	for (i = 0; i < NTABLE; i++)
		if (table[i].t == t)
			return table[i].name;
	return "unknown";
}

int sm_dtype_from_name(const char *name, sm_dtype *out)
{
	size_t i;

	if (name == NULL)
		return SM_EINVAL;
	for (i = 1; i < NTABLE; i++)
		if (strcmp(table[i].name, name) == 0) {
			*out = table[i].t;
			return 0;
		}
	return SM_EINVAL;
}

hid_t sm__h5_memtype(sm_dtype t)
{
	switch (t) {
	case SM_DTYPE_U8:
		return H5T_NATIVE_UINT8;
	case SM_DTYPE_I32:
		return H5T_NATIVE_INT32;
	case SM_DTYPE_U32:
		return H5T_NATIVE_UINT32;
	case SM_DTYPE_I64:
		return H5T_NATIVE_INT64;
	case SM_DTYPE_U64:
		return H5T_NATIVE_UINT64;
	case SM_DTYPE_F32:
		return H5T_NATIVE_FLOAT;
	case SM_DTYPE_F64:
		return H5T_NATIVE_DOUBLE;
	default:
		return -1;
	}
}

sm_dtype sm__dtype_of_h5(hid_t type)
{
	H5T_class_t cls = H5Tget_class(type);
	size_t size = H5Tget_size(type);

	if (cls == H5T_INTEGER) {
		int is_signed = H5Tget_sign(type) == H5T_SGN_2;

		if (size == 1 && !is_signed)
			return SM_DTYPE_U8;
		if (size == 4)
			return is_signed ? SM_DTYPE_I32 : SM_DTYPE_U32;
		if (size == 8)
			return is_signed ? SM_DTYPE_I64 : SM_DTYPE_U64;
	} else if (cls == H5T_FLOAT) {
		if (size == 4)
			return SM_DTYPE_F32;
		if (size == 8)
			return SM_DTYPE_F64;
	}
	return SM_DTYPE_NONE;
}
