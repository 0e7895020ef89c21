/*
 * The run's resident peak against the estimate (docs/MODEL.md "The four peaks", docs/REPORT.md):
 * the one place that reads the keys behind it, judges it and words it. The estimate's
 * peak_resident_bytes (calibrated: the run recomputes estimate.json with its measured sphere sizes)
 * is judged against memory.json process.vm_hwm (VmHWM at the end of the run, the whole process) at
 * max(SM_REPORT_RESIDENT_TOLERANCE, --tolerance), and no less than SM_REPORT_RESIDENT_FLOOR
 * (small runs); the pre-run estimate (estimate.json pre_run, from
 * the modelled sphere sizes) is shown beside it with its error, and the address space (VmPeak)
 * beside its prediction, not judged. Every writer prints r->resident_lines as they are; JSON gets
 * the figures. Documents without these keys (older runs) have no resident section; a run whose
 * allocator was not measured (sanitizer builds: the shadow memory is resident) is shown, not judged.
 * The report's findings are collected here too (sm__report_findings), once for every writer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/internal.h"

int sm__report_load_resident_estimate(sm_report *r, sm__jdoc *d, json_t *est)
{
	json_t *pre;
	int rc;

	r->has_resident = 0;
	if ((rc = sm__report_load_capacity(r, d, est)) != 0)
		return rc;
	if (json_object_get(est, "peak_resident_bytes") == NULL)
		return 0;
	if ((rc = sm__j_u64(d, est, "", "peak_resident_bytes", &r->est_resident)) != 0 ||
	    (rc = sm__j_u64(d, est, "", "peak_address_space_bytes", &r->est_address_space)) != 0)
		return rc;
	r->est_resident_pre = r->est_resident;
	r->est_peak_pre = 0;
	pre = json_object_get(est, "pre_run");
	if (pre != NULL && !json_is_null(pre)) {
		if ((rc = sm__j_obj(d, est, "", "pre_run", &pre)) != 0 ||
		    (rc = sm__j_u64(d, pre, "pre_run", "peak_resident_bytes", &r->est_resident_pre)) != 0 ||
		    (rc = sm__j_u64(d, pre, "pre_run", "peak_bytes", &r->est_peak_pre)) != 0)
			return rc;
	}
	r->has_resident = 1;
	return 0;
}

int sm__report_load_resident_memory(sm_report *r, sm__jdoc *d, json_t *mem)
{
	json_t *p = json_object_get(mem, "process"), *v;
	int rc;

	r->meas_vm_hwm = r->meas_vm_peak = 0;
	r->has_cgroup_peak = 0;
	if (p == NULL || json_is_null(p))
		return 0;
	if ((rc = sm__j_obj(d, mem, "", "process", &p)) != 0)
		return rc;
	if (!json_is_null(json_object_get(p, "vm_hwm")) &&
	    (rc = sm__j_u64(d, p, "process", "vm_hwm", &r->meas_vm_hwm)) != 0)
		return rc;
	if (!json_is_null(json_object_get(p, "vm_peak")) &&
	    (rc = sm__j_u64(d, p, "process", "vm_peak", &r->meas_vm_peak)) != 0)
		return rc;
	v = json_object_get(p, "cgroup_memory_peak");
	if (v != NULL && !json_is_null(v)) {
		if ((rc = sm__j_u64(d, p, "process", "cgroup_memory_peak", &r->meas_cgroup_peak)) != 0)
			return rc;
		r->has_cgroup_peak = 1;
	}
	return 0;
}

void sm__report_judge_resident(uint64_t est, uint64_t vm_hwm, double tolerance_pct,
			       sm_report_cmp *c)
{
	double tol = tolerance_pct > SM_REPORT_RESIDENT_TOLERANCE ? tolerance_pct
								 : SM_REPORT_RESIDENT_TOLERANCE;

	sm_report_judge(est, vm_hwm, tol, 0, c);
	/* small runs: the baseline's own variation with the run's size (18.1 MiB of VmHWM at 2,000
	 * cells against the 18.5 MiB measured at 1e7) is allowed as an absolute floor */
	if (c->bound < SM_REPORT_RESIDENT_FLOOR) {
		c->bound = SM_REPORT_RESIDENT_FLOOR;
		c->absolute = 1;
		c->verdict = (c->diff < 0 ? -(uint64_t)c->diff : (uint64_t)c->diff) <=
				     SM_REPORT_RESIDENT_FLOOR ? SM_VERDICT_PASS : SM_VERDICT_FAIL;
	}
}

void sm__report_resident(sm_report *r, double tolerance_pct)
{
	char a[32], b[32], c[32], p[32], x[32], y[32], q[32];
	uint64_t meas_req = 0;
	size_t i;
	int spheres = 0;

	memset(r->resident_lines, 0, sizeof(r->resident_lines));
	memset(&r->resident, 0, sizeof(r->resident));
	memset(&r->resident_pre, 0, sizeof(r->resident_pre));
	memset(&r->requested_pre, 0, sizeof(r->requested_pre));
	memset(&r->address_space, 0, sizeof(r->address_space));
	r->resident_failed = 0;
	sm__report_capacity(r);
	r->resident_tolerance_pct = tolerance_pct > SM_REPORT_RESIDENT_TOLERANCE
				    ? tolerance_pct : SM_REPORT_RESIDENT_TOLERANCE;
	if (!r->has_resident || r->meas_vm_hwm == 0)
		return;
	for (i = 0; i < r->nstages; i++)
		if (r->stages[i].has_meas && r->stages[i].meas_peak > meas_req)
			meas_req = r->stages[i].meas_peak;
	sm__report_judge_resident(r->est_resident, r->meas_vm_hwm, tolerance_pct, &r->resident);
	sm_report_judge(r->est_resident_pre, r->meas_vm_hwm, r->resident_tolerance_pct, 0,
			&r->resident_pre);
	r->resident_pre.verdict = SM_VERDICT_NA;
	if (r->est_peak_pre > 0) {
		sm_report_judge(r->est_peak_pre, meas_req, r->tolerance_pct, r->abs_bound,
				&r->requested_pre);
		r->requested_pre.verdict = SM_VERDICT_NA;
	}
	if (r->meas_vm_peak > 0) {
		sm_report_judge(r->est_address_space, r->meas_vm_peak, 0, 0, &r->address_space);
		r->address_space.verdict = SM_VERDICT_NA;
	}
	/* a program under snapmem profile: its large blocks sit in glibc's heap, which keeps the
	 * pages of freed ones (docs/PROFILE.md "Large blocks"), and no description models that:
	 * shown, not judged; its stages are */
	if (!r->measured || !r->complete || sm__report_mpi_of(r) != NULL || r->profiled)
		r->resident.verdict = SM_VERDICT_NA;
	r->resident_failed = r->resident.verdict == SM_VERDICT_FAIL;

	/* `snapmem run` re-estimates with the spheres it measured; a profiled program's estimate
	 * is the description's as given, and a pipeline without a per-halo loop has no spheres */
	for (i = 0; i < r->nstages && !spheres; i++)
		spheres = r->stages[i].per_halo && !r->profiled;
	snprintf(r->resident_lines[0], sizeof(r->resident_lines[0]),
		 "resident peak, the whole process: estimated %s%s, VmHWM %s, %s (%s): %s",
		 sm__iec(r->est_resident, a, sizeof(a)),
		 spheres ? " (with this run's sphere sizes)" : "", sm__iec(r->meas_vm_hwm, b, sizeof(b)),
		 sm__iec_signed(r->resident.diff, c, sizeof(c)), sm__pct(&r->resident, p, sizeof(p)),
		 r->resident.verdict == SM_VERDICT_PASS ? "PASS" :
		 r->resident.verdict == SM_VERDICT_FAIL ? "FAIL" :
		 !r->measured ? "not judged (the allocator was not measured: a sanitizer build's "
				"resident set is not the model's)" :
		 !r->complete ? "not judged (incomplete run)" :
		 r->profiled ? "shown, not judged (a profiled program: glibc's heap keeps the pages "
			       "of its freed large blocks, which the description does not model)" :
		 "not judged here: a distributed run's figures are per rank, VmHWM is rank 0's "
		 "(every rank's judged in the ranks table)");
	if (r->resident.verdict != SM_VERDICT_NA) {
		size_t n = strlen(r->resident_lines[0]);

		if (r->resident.absolute)
			snprintf(r->resident_lines[0] + n, sizeof(r->resident_lines[0]) - n,
				 " within %s (a small run: %g%% would be less)",
				 sm__iec(SM_REPORT_RESIDENT_FLOOR, a, sizeof(a)),
				 r->resident_tolerance_pct);
		else
			snprintf(r->resident_lines[0] + n, sizeof(r->resident_lines[0]) - n,
				 " within %g%%", r->resident_tolerance_pct);
	}
	if (r->est_peak_pre > 0)
		snprintf(r->resident_lines[1], sizeof(r->resident_lines[1]),
			 "before the run%s: resident %s, %s (%s) against VmHWM; "
			 "requested peak %s, %s (%s) against the measured %s",
			 spheres ? " (modelled sphere sizes)" : "",
			 sm__iec(r->est_resident_pre, a, sizeof(a)),
			 sm__iec_signed(r->resident_pre.diff, b, sizeof(b)),
			 sm__pct(&r->resident_pre, p, sizeof(p)),
			 sm__iec(r->est_peak_pre, x, sizeof(x)),
			 sm__iec_signed(r->requested_pre.diff, y, sizeof(y)),
			 sm__pct(&r->requested_pre, q, sizeof(q)), sm__iec(meas_req, c, sizeof(c)));
	if (r->meas_vm_peak > 0)
		snprintf(r->resident_lines[2], sizeof(r->resident_lines[2]),
			 "address space: estimated %s, VmPeak %s, %s (%s): shown, not judged (it binds "
			 "only under ulimit -v or strict overcommit)",
			 sm__iec(r->est_address_space, a, sizeof(a)),
			 sm__iec(r->meas_vm_peak, b, sizeof(b)),
			 sm__iec_signed(r->address_space.diff, c, sizeof(c)),
			 sm__pct(&r->address_space, p, sizeof(p)));
	if (r->has_cgroup_peak)
		snprintf(r->resident_lines[3], sizeof(r->resident_lines[3]),
			 "the cgroup's memory.peak read %s: it also counts the page cache of the files "
			 "read, so it is not compared with the resident peak",
			 sm__iec(r->meas_cgroup_peak, a, sizeof(a)));
	else
		snprintf(r->resident_lines[3], sizeof(r->resident_lines[3]),
			 "a cgroup's memory.peak and Slurm's MaxRSS also count the page cache of the "
			 "files read: compare them with this peak plus the bytes read");
}

json_t *sm__report_resident_json(const sm_report *r)
{
	json_t *o;

	if (!r->has_resident || r->meas_vm_hwm == 0)
		return json_null();
	o = json_object();
	json_object_set_new(o, "tolerance_pct", json_real(r->resident_tolerance_pct));
	json_object_set_new(o, "resident", sm__cmp_json(&r->resident));
	json_object_set_new(o, "resident_pre_run", sm__cmp_json(&r->resident_pre));
	json_object_set_new(o, "requested_pre_run", r->est_peak_pre > 0
				   ? sm__cmp_json(&r->requested_pre) : json_null());
	json_object_set_new(o, "address_space", r->meas_vm_peak > 0
				   ? sm__cmp_json(&r->address_space) : json_null());
	json_object_set_new(o, "cgroup_memory_peak_bytes",
			    r->has_cgroup_peak ? json_integer((json_int_t)r->meas_cgroup_peak)
					       : json_null());
	return o;
}

/*
 * The findings, collected once (the writers list r->findings, never work them out): stages that
 * ran but are not modelled, tracked arrays not modelled, then stages whose allocated bytes at the
 * peak beyond the absolute bound no tracked array explains (when the allocator was measured).
 */
int sm__report_findings(sm_report *r, sm_error *err)
{
	size_t i, n = 0, cap = r->nstages * 2 + r->narrays + 1;

	free(r->findings);
	r->nfindings = 0;
	r->findings = calloc(cap, sizeof(*r->findings));
	if (r->findings == NULL)
		return sm_error_set(err, SM_ENOMEM, "cannot allocate the report's findings");
	for (i = 0; i < r->nstages; i++)
		if (r->stages[i].has_meas && !r->stages[i].has_est)
			r->findings[n++] = (sm_report_finding){SM_FINDING_UNMODELLED_STAGE, i,
							       r->stages[i].meas_peak};
	for (i = 0; i < r->narrays; i++)
		if (r->arrays[i].has_meas && !r->arrays[i].has_est)
			r->findings[n++] = (sm_report_finding){SM_FINDING_UNMODELLED_ARRAY, i,
							       r->arrays[i].meas_requested};
	for (i = 0; i < r->nstages; i++)
		if (r->measured && r->stages[i].has_meas && r->stages[i].unexplained > r->abs_bound)
			r->findings[n++] = (sm_report_finding){SM_FINDING_UNEXPLAINED, i,
							       r->stages[i].unexplained};
	r->nfindings = n;
	return 0;
}
