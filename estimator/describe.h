/*
 * Shared-internal pieces of the pipeline descriptions (docs/PIPELINES.md), for estimator/describe.c
 * (the YAML reader and the static checks), estimator/expr.c (the expression language) and
 * estimator/interp.c (the replay of a description on the simulated heap). A parsed description
 * owns every string it hands out: stage ids, array names and assumption sentences point into it and
 * stay valid until sm_desc_free.
 */
#ifndef SNAPMEM_ESTIMATOR_DESCRIBE_H
#define SNAPMEM_ESTIMATOR_DESCRIBE_H

#include <stddef.h>
#include <stdint.h>

#include "snapmem/describe.h"
#include "snapmem/error.h"
#include "snapmem/estimator.h"

/* Limits: a description beyond them is refused with one line naming the limit. */
#define SM__DESC_MAX_BYTES (1u << 20)   /* the file */
#define SM__DESC_MAX_DEPTH 24           /* YAML nesting */
#define SM__DESC_MAX_EXPR_DEPTH 64      /* expression nesting (the parser recurses) */
#define SM__DESC_MAX_EXPR_LEN 4096      /* characters of one expression */
#define SM__DESC_MAX_OPTIONS 16
#define SM__DESC_MAX_VALUES 16          /* values of one enumerated option */
#define SM__DESC_MAX_LETS 64
#define SM__DESC_MAX_ASSUMPTIONS 16
#define SM__DESC_MAX_ARGS 8             /* arguments of one function call */

/* ---- expressions (expr.c) ------------------------------------------------------------------ */

enum sm__xkind {
	SM__X_INT, SM__X_REAL, SM__X_IDENT, SM__X_STR, SM__X_UNARY, SM__X_BINARY, SM__X_COND,
	SM__X_CALL
};

/* What an identifier names, once resolved (sm__desc_resolve). */
enum sm__xref {
	SM__R_NONE, SM__R_QUANTITY, SM__R_LET, SM__R_OPTION, SM__R_DTYPE, SM__R_WORD
};

typedef struct sm__expr {
	enum sm__xkind kind;
	int op;                      /* operator token (unary, binary) or function id (call) */
	uint64_t u;                  /* integer literal */
	double d;                    /* real literal */
	char *name;                  /* identifier, string or function name */
	struct sm__expr *a, *b, *c;  /* operands (cond: a ? b : c) */
	struct sm__expr *args[SM__DESC_MAX_ARGS];
	int nargs;
	int line, col;               /* 1-based, in the description file */
	enum sm__xref ref;
	int idx;                     /* quantity id, let index, option index or dtype id */
} sm__expr;

/* Operators (besides single characters + - * / % < > ! ? :) */
enum { SM__OP_EQ = 256, SM__OP_NE, SM__OP_LE, SM__OP_GE, SM__OP_AND, SM__OP_OR };

/* Functions */
enum {
	SM__F_MIN, SM__F_MAX, SM__F_FLOOR, SM__F_CEIL, SM__F_CEIL_DIV, SM__F_GRID_SIDE,
	SM__F_HALO_GRID_SIDE, SM__F_SIZEOF, SM__F_IF, SM__F_CBRT, SM__F_COUNT
};

/* Parses text (one expression) that starts at line:col of file; *out is malloc'd (sm__expr_free).
 * 0 or SM_EFORMAT with "FILE:LINE:COL: ..." in err. */
int sm__expr_parse(const char *file, const char *text, int line, int col, sm__expr **out,
		   sm_error *err);
void sm__expr_free(sm__expr *x);

/* A value: an integer (uint64), a real, a dtype or an option's word. */
enum sm__vkind { SM__V_INT, SM__V_REAL, SM__V_DTYPE, SM__V_WORD };
typedef struct sm__val {
	enum sm__vkind k;
	uint64_t u;
	double d;
	int dtype;           /* index into the dtype table */
	const char *s;       /* a word */
} sm__val;

/* The dtypes of descriptions: name, element bytes, the model's sm_dtype (SM_DTYPE_NONE when it has
 * none). Returns -1 for an unknown name. */
int sm__dtype_lookup(const char *name);
const char *sm__dtype_name(int id);
uint64_t sm__dtype_size(int id);
sm_dtype sm__dtype_model(int id);

/* The quantities (from the headers and the options, never the particle data). */
enum {
	SM__Q_GAS_CELLS, SM__Q_NPART_GAS, SM__Q_NPART_DM, SM__Q_NPART_TRACERS, SM__Q_NPART_STARS,
	SM__Q_NPART_BH, SM__Q_GROUPS, SM__Q_SUBHALOS, SM__Q_FILES, SM__Q_GROUPS_CHUNK_MAX,
	SM__Q_HALOS, SM__Q_SPHERE, SM__Q_SPHERE_MAX, SM__Q_SPHERE_RADIUS_MAX, SM__Q_BOX_SIZE,
	SM__Q_MASS_TABLE_DM, SM__Q_RANKS, SM__Q_CELLS_PER_RANK_MAX, SM__Q_CELLS_PER_RANK_MIN,
	SM__Q_GAS_CHUNK_MAX, SM__Q_DM_CHUNK_MAX,
	SM__Q_PEAK_ALLOCATED, SM__Q_PEAK_REQUESTED, SM__Q_ALLOCATED_TOTAL, SM__Q_COUNT
};
const char *sm__quantity_name(int q);
int sm__quantity_lookup(const char *name);

/* Where an expression may be: sphere only in per-halo stages, the peaks only under process:. */
#define SM__CTX_HALO 1u
#define SM__CTX_PROCESS 2u

/* ---- the description (describe.c) ---------------------------------------------------------- */

typedef struct sm__desc_option {
	char *name;
	int line, col;
	int numeric;                 /* 1: an integer; 0: one of values */
	char *values[SM__DESC_MAX_VALUES];
	size_t nvalues;
	char *def;                   /* the default as written */
	uint64_t def_u, min, max;    /* numeric */
	uint64_t sweep[SM__DESC_MAX_VALUES];
	size_t nsweep;
	sm__expr *when;              /* in force only when true (NULL: always) */
} sm__desc_option;

typedef struct sm__desc_let {
	char *name;
	int line, col;
	sm__expr *x;
} sm__desc_let;

enum sm__free_kind { SM__FREE_NEVER, SM__FREE_STAGE, SM__FREE_AFTER };

typedef struct sm__desc_array {
	char *name;
	int line, col;
	sm__expr *dtype, *count, *touched, *when;
	enum sm__free_kind free;
	int free_stage;              /* SM__FREE_STAGE: index of the stage */
	int free_after;              /* SM__FREE_AFTER: index of the array in the same stage */
	int free_line, free_col;
	int huge;                    /* pages: huge (resident by sm_model_huge_extent) */
} sm__desc_array;

typedef struct sm__desc_stage {
	char *id;
	int line, col;
	sm__expr *when;
	int per_halo;                /* a per-halo loop body, one halo at a time (per_halo: true) */
	sm__expr *per_halo_x;        /* per_halo: EXPRESSION, decided per variant */
	int all_halos;               /* works on every halo at once: a halo's peak is this stage's */
	sm__desc_array arrays[SM_EST_MAX_ARRAYS];
	size_t narrays;
} sm__desc_stage;

typedef struct sm__desc_text {
	char *text;
	sm__expr *when;
} sm__desc_text;

/* A documented figure (documented:): printed beside the estimate of its stage. */
typedef struct sm__desc_documented {
	char *what, *text, *source, *note;
	char *model;                 /* what it is compared with, as printed */
	int stage;                   /* index of the stage */
	int arrays[SM_EST_MAX_ARRAYS]; /* indices into the stage's arrays; none: the stage's peak */
	size_t narrays;
	uint64_t value;              /* bytes */
	sm__expr *when;
} sm__desc_documented;

struct sm_pipeline_desc {
	char *file;                  /* the name errors give */
	char *id, *title;
	int is_default;              /* the embedded radial-profiles */
	int profile_allocator;       /* allocator: profile (a program under snapmem profile) */
	sm__desc_option options[SM__DESC_MAX_OPTIONS];
	size_t noptions;
	sm__desc_let lets[SM__DESC_MAX_LETS];
	size_t nlets;
	sm__desc_stage stages[SM_EST_MAX_STAGES];
	size_t nstages;
	sm__expr *baseline_allocated, *baseline_resident, *baseline_address_space,
		*arrays_address_space;
	sm__expr *baseline_resident_other; /* distributed: ranks 1.. (NULL: baseline_resident) */
	sm__desc_text assumptions[SM__DESC_MAX_ASSUMPTIONS];
	size_t nassumptions;
	sm__desc_documented documented[SM_EST_MAX_DOCUMENTED];
	size_t ndocumented;
};

/* Option index by name, -1 when not declared. */
int sm__desc_option_index(const sm_pipeline_desc *d, const char *name);

/* ---- evaluation (expr.c) -------------------------------------------------------------------- */

/* What an evaluation sees: the quantities' values (computed by interp.c), the options' values,
 * the current halo's sphere and where the expression is. */
typedef struct sm__env {
	const sm_pipeline_desc *d;
	uint64_t q[SM__Q_COUNT];
	double qd[SM__Q_COUNT];      /* the real-valued quantities (box_size, radius, mass) */
	int q_real[SM__Q_COUNT];
	const char *opt_word[SM__DESC_MAX_OPTIONS];  /* enumerated options' values */
	uint64_t opt_u[SM__DESC_MAX_OPTIONS];        /* numeric ones */
	unsigned ctx;                /* SM__CTX_* */
	uint64_t used;               /* bit q: quantity q was read */
	int sphere_rc;               /* != 0: sphere cells could not be modelled (sphere_err) */
	sm_error sphere_err;
	int gc_rc;                   /* != 0: groups_chunk_max is inconsistent (gc_err) */
	sm_error gc_err;
	const char *subhalos_unknown; /* non-NULL: the source has no subhalo count (what it is) */
	const sm_error *halos_err;   /* non-NULL: no halos could be selected (why) */
} sm__env;

/*
 * Replays d for in and o into e (whose halo_sphere_cells, nhalos, files and work split are already
 * filled; sphere_err non-NULL when the sphere cells could not be modelled, an error raised only if
 * the description reads them): the stages, every halo's peak, the baselines, the address space,
 * the description's assumptions. *cum_alloc: the size classes of every array allocated.
 */
int sm__desc_replay(const sm_pipeline_desc *d, const sm_est_input *in, const sm_model_options *o,
		    sm_estimate *e, const sm_error *sphere_err, uint64_t *cum_alloc, sm_error *err);

/* Evaluates x in env. 0 or SM_EFORMAT/SM_EOVERFLOW/SM_EINVAL with "FILE:LINE:COL: ..." in err. */
int sm__expr_eval(const sm__expr *x, sm__env *env, sm__val *out, sm_error *err);
/* The same, requiring an integer (a real must be integral), a truth value or a dtype. */
int sm__expr_u64(const sm__expr *x, sm__env *env, const char *what, uint64_t *out, sm_error *err);
int sm__expr_bool(const sm__expr *x, sm__env *env, int *out, sm_error *err);
int sm__expr_dtype(const sm__expr *x, sm__env *env, int *out, sm_error *err);

/* The value of every option of d for o (words[i] for an enumerated one, nums[i] for a numeric one;
 * SM__DESC_MAX_OPTIONS each). 0 or SM_EINVAL (a switch the description does not declare, a bad
 * --set). */
int sm__desc_option_values(const sm_pipeline_desc *d, const sm_model_options *o,
			   const char **words, uint64_t *nums, sm_error *err);

/*
 * The variants d declares (docs/PIPELINES.md "Variants"): every combination of its options, the
 * first declared varying slowest; an enumerated option takes each of its values, a numeric one its
 * sweep: values (with_sweep) and then o's value when not among them; an option whose when: is false
 * takes its default (enumerated) or o's value (numeric) and does not vary. *out malloc'd (at most
 * 64; more is SM_EINVAL), each o with the variant's switches and --set values. 0 or SM_E*.
 */
int sm__desc_variants(const sm_pipeline_desc *d, const sm_model_options *o, int with_sweep,
		      sm_model_options **out, size_t *n, sm_error *err);

/* The distributed run's halo-index grid side (the pipeline's arithmetic, one implementation). */
uint64_t sm__est_halo_grid_side(double box, double radius_max);

/* Edit distance suggestion: the closest of cands to word, or NULL. */
const char *sm__closest(const char *word, const char *const *cands, size_t n);

#endif
