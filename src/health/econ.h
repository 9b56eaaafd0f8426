/*
 * econ: the expected cost of each action on a GPU that is not healthy or at risk: keep,
 * drain, reset the GPU, reboot the node, or RMA, from inputs a user sets (value of a GPU-hour,
 * RMA cost, downtime of each action, checkpoint interval of the jobs, ...). No I/O. The
 * formulas and defaults are in docs/health.md.
 */
#ifndef GPUHEALTH_HEALTH_ECON_H
#define GPUHEALTH_HEALTH_ECON_H

#include <stdbool.h>

#include "health/rules.h"

struct econ_inputs {
	double gpu_hour_value;        /* V: value of one GPU-hour (currency units) */
	double rma_cost;              /* C: direct cost of an RMA (logistics, labour, spare) */
	double checkpoint_interval_h; /* T: jobs checkpoint this often */
	double restart_h;             /* R: time to restart a job from its checkpoint */
	double job_gpus;              /* J: GPUs of the job a failure interrupts */
	double gpus_per_node;         /* N: GPUs idled by a node reboot */
	double downtime_h[ACT_COUNT]; /* d_a: hours out of service of drain, reset, reboot, rma */
	double horizon_h;             /* H: the prediction's horizon */
	double service_life_h;        /* S: remaining service life of a GPU */
	double residual_risk;         /* rho: share of the risk left after a reset or reboot */
};

/* The defaults (docs/health.md). */
void econ_defaults(struct econ_inputs *in);

struct econ_result {
	double cost[ACT_COUNT];    /* expected cost of each action over the horizon */
	bool resolves[ACT_COUNT];  /* the action clears the cause */
	double job_loss;           /* L: expected cost of one unplanned failure to the job */
	enum health_action best;   /* the cheapest; ties go to the less invasive */
};

/*
 * p: probability of failure within the horizon if nothing is done (1 when failing now);
 * failing: the GPU fails its health rules now; required: the least action that clears the
 * cause (rules' remedy, or the predictor's). Returns 0 or -EINVAL (inputs out of range).
 */
int econ_evaluate(const struct econ_inputs *in, double p, bool failing,
		  enum health_action required, struct econ_result *out);

#endif
