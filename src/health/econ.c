#include "health/econ.h"

#include <errno.h>
#include <math.h>
#include <string.h>

void econ_defaults(struct econ_inputs *in)
{
	memset(in, 0, sizeof(*in));
	in->gpu_hour_value = 2.50;
	in->rma_cost = 1500;
	in->checkpoint_interval_h = 1.0;
	in->restart_h = 0.25;
	in->job_gpus = 8;
	in->gpus_per_node = 8;
	in->downtime_h[ACT_KEEP] = 0;
	in->downtime_h[ACT_DRAIN] = 4.0;
	in->downtime_h[ACT_RESET] = 0.1;
	in->downtime_h[ACT_REBOOT] = 0.25;
	in->downtime_h[ACT_RMA] = 168.0;
	in->horizon_h = 24.0;
	in->service_life_h = 2 * 8760.0;
	in->residual_risk = 0.2;
}

int econ_evaluate(const struct econ_inputs *in, double p, bool failing,
		  enum health_action required, struct econ_result *out)
{
	memset(out, 0, sizeof(*out));
	if (!(p >= 0 && p <= 1) || !(in->gpu_hour_value >= 0) || !(in->rma_cost >= 0) ||
	    !(in->horizon_h > 0) || !(in->job_gpus >= 1) || !(in->gpus_per_node >= 1) ||
	    !(in->residual_risk >= 0 && in->residual_risk <= 1) || (unsigned)required >= ACT_COUNT)
		return -EINVAL;
	const double V = in->gpu_hour_value, H = in->horizon_h;
	/* an unplanned failure loses, on every GPU of the job, the work since the last checkpoint
	 * (half an interval on average) and the restart */
	out->job_loss = V * in->job_gpus * (in->checkpoint_interval_h / 2.0 + in->restart_h);
	for (int a = 0; a < ACT_COUNT; a++) {
		double d = in->downtime_h[a];
		double idled = a == ACT_REBOOT ? in->gpus_per_node : 1.0;
		/* what needs inspection (heat, power, links) is cleared by draining only; a reset,
		 * reboot or RMA clears what needs that action or a lesser one of the three */
		bool res;
		if (a == ACT_KEEP)
			res = false;
		else if (required == ACT_KEEP)
			res = true;
		else if (required == ACT_DRAIN)
			res = a == ACT_DRAIN;
		else
			res = a != ACT_DRAIN && (int)required <= a;
		double direct = a == ACT_RMA ? in->rma_cost : 0.0;
		double in_service = fmax(0.0, H - d) / H;
		double p_after = res ? p * (a == ACT_RMA ? 0.0 : in->residual_risk) : p * in_service;
		/* a fault left in place keeps the GPU useless: for the rest of the horizon, or for
		 * its service life when only a repair (RMA) clears it */
		double useless_h = 0;
		if (failing && !res)
			useless_h = required == ACT_RMA ? in->service_life_h : fmax(0.0, H - d);
		out->resolves[a] = res;
		out->cost[a] = direct + V * idled * d + p_after * out->job_loss + V * useless_h;
	}
	out->best = ACT_KEEP;
	for (int a = 1; a < ACT_COUNT; a++)
		if (out->cost[a] < out->cost[out->best] - 1e-9)
			out->best = (enum health_action)a;
	return 0;
}
