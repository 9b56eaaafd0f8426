#include "sim/sim.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- models (models.def) */

static const struct sim_model models[] = {
#include "sim/models.def"
};

const struct sim_model *sim_model_find(const char *name)
{
	for (size_t i = 0; name && i < sizeof(models) / sizeof(models[0]); i++)
		if (strcasecmp(name, models[i].name) == 0)
			return &models[i];
	return NULL;
}

const char *sim_model_names(void)
{
	return "A100-SXM4-80GB, H100-SXM5-80GB, H200";
}

bool sim_field_is_float(enum sim_field field)
{
	switch (field) {
	case SIM_F_POWER_USAGE:
	case SIM_F_GR_ENGINE_ACTIVE:
	case SIM_F_TENSOR_ACTIVE:
	case SIM_F_DRAM_ACTIVE:
	case SIM_F_SM_ACTIVE:
	case SIM_F_SM_OCCUPANCY:
	case SIM_F_POWER_MGMT_LIMIT:
	case SIM_F_ENFORCED_POWER_LIMIT: return true;
	default: return false;
	}
}

/* ---- deterministic randomness: a hash of (seed, gpu, step, stream) */

enum stream {
	R_POS,
	R_AMBIENT,
	R_RTH,
	R_HUNGER,
	R_IDLE,
	R_FB,
	R_ENERGY,
	R_SBE0,
	R_NVBW0,
	R_UUID,
	R_UUID2,
	R_UTIL,
	R_POWER,
	R_PCIE,
	R_SBE,
	R_DBE,
	R_REPLAY,
	R_FLIT,
	R_DATA,
	R_ROWS,
	R_MISC,
	R_POD,
};

static uint64_t mix64(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t hash4(uint64_t seed, uint64_t gpu, uint64_t step, uint64_t stream)
{
	return mix64(mix64(mix64(mix64(seed) ^ gpu) ^ step) ^ stream);
}

/* Uniform in [0, 1). */
static double unif(uint64_t seed, unsigned gpu, uint64_t step, enum stream s)
{
	return (double)(hash4(seed, gpu, step, (uint64_t)s) >> 11) * 0x1.0p-53;
}

/* Uniform in [-1, 1). */
static double noise(uint64_t seed, unsigned gpu, uint64_t step, enum stream s)
{
	return 2.0 * unif(seed, gpu, step, s) - 1.0;
}

/* ---- the workload cycle */

double sim_cycle_load(double pos)
{
	const double idle = 0.10, peak = 0.90;
	pos = fmod(pos, SIM_CYCLE_S);
	if (pos < 0)
		pos += SIM_CYCLE_S;
	if (pos < 60)
		return idle;
	if (pos < 120)
		return idle + (peak - idle) * (pos - 60) / 60;
	if (pos < 240)
		return peak;
	return peak - (peak - idle) * (pos - 240) / 60;
}

/* ---- per-GPU state */

#define TAU_GPU_S    40.0 /* thermal time constant of die + heat sink */
#define TAU_MEM_S    70.0 /* HBM stacks */
#define R_AT_LIMIT_C 47.0 /* temperature rise above inlet at the power limit, nominal cooling */

struct gpu_state {
	/* constants */
	double pos0, ambient, r_th, hunger, idle_w, fb_bias;
	/* gauges at the state's time */
	double load, util, power, temp, mem_temp, clk_factor;
	unsigned reasons;
	bool hw_slow;
	/* counters */
	uint64_t energy_mj, pcie_replay, sbe_vol, dbe_vol, sbe_agg, dbe_agg, corr_rows, uncorr_rows;
	uint64_t power_viol_ns, thermal_viol_ns, nvl_flit, nvl_data, nvl_bw;
	double energy_frac, power_viol_frac, thermal_viol_frac, nvl_bw_frac;
	/* events */
	unsigned xid;
	bool has_xid, remap_failure, remap_pending;
};

struct sim {
	struct sim_params p;
	const struct sim_model *m;
	struct inject_spec *faults; /* owned copy */
	double t;                   /* current simulated time */
	uint64_t k;                 /* whole steps taken by base[] */
	struct gpu_state *base;     /* state at k * SIM_STEP_S */
	struct sim_gpu *out;        /* view at t */
};

static double clamp(double v, double lo, double hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

static double fault_end(const struct inject_spec *f, double dflt)
{
	return f->at + (f->duration > 0 ? f->duration : dflt);
}

#define SBE_STORM_DEFAULT_S 180.0
#define SBE_STORM_R0        0.05  /* errors/s when the storm starts */
#define SBE_STORM_GROWTH    400.0 /* rate multiplies by this over the storm */

/* Rate of single-bit errors per second at time t for GPU i. */
static double sbe_rate(const struct sim *s, unsigned i, double t)
{
	double r = 1.0 / 3600; /* occasional: about one an hour */
	for (size_t f = 0; f < s->p.n_faults; f++) {
		const struct inject_spec *fs = &s->faults[f];
		if (fs->gpu != i || fs->kind != INJECT_SBE_STORM)
			continue;
		double end = fault_end(fs, SBE_STORM_DEFAULT_S);
		if (t >= fs->at && t < end)
			r += SBE_STORM_R0 *
			     exp(log(SBE_STORM_GROWTH) * (t - fs->at) / (end - fs->at));
	}
	return r;
}

static bool active(const struct sim *s, unsigned i, enum inject_kind kind, double t,
                   const struct inject_spec **which)
{
	for (size_t f = 0; f < s->p.n_faults; f++) {
		const struct inject_spec *fs = &s->faults[f];
		if (fs->gpu == i && fs->kind == kind && t >= fs->at &&
		    t < fault_end(fs, INFINITY)) {
			if (which)
				*which = fs;
			return true;
		}
	}
	return false;
}

static void set_xid(struct gpu_state *g, unsigned xid)
{
	g->xid = xid;
	g->has_xid = true;
}

static void double_bit_error(struct gpu_state *g)
{
	g->dbe_vol++;
	g->dbe_agg++;
	g->uncorr_rows++; /* Ampere and newer remap the row at the next reset */
	g->remap_pending = true;
	set_xid(g, 48);
}

/* Applies the instantaneous events of GPU i with t0 < time <= t1 (t0 < 0 includes time 0). */
static void apply_events(const struct sim *s, unsigned i, struct gpu_state *g, double t0, double t1)
{
	for (size_t f = 0; f < s->p.n_faults; f++) {
		const struct inject_spec *fs = &s->faults[f];
		if (fs->gpu != i)
			continue;
#define IN(x) ((x) > t0 && (x) <= t1)
		switch (fs->kind) {
		case INJECT_DBE:
			if (IN(fs->at))
				double_bit_error(g);
			break;
		case INJECT_XID:
			if (IN(fs->at))
				set_xid(g, fs->xid);
			break;
		case INJECT_REMAP_PENDING:
			if (IN(fs->at)) {
				g->corr_rows++;
				g->remap_pending = true;
				set_xid(g, 63);
			}
			break;
		case INJECT_REMAP_FAILURE:
			if (IN(fs->at)) {
				g->remap_failure = true;
				set_xid(g, 64);
			}
			break;
		case INJECT_FELL_OFF_BUS:
			if (IN(fs->at))
				set_xid(g, 79);
			break;
		case INJECT_SBE_STORM: {
			double end = fault_end(fs, SBE_STORM_DEFAULT_S);
			/* XID 92 (high SBE rate) when the rate passes 1/s, then the DBE at the end
			 */
			double x92 = fs->at + (end - fs->at) * log(1.0 / SBE_STORM_R0) /
			                          log(SBE_STORM_GROWTH);
			if (IN(x92))
				set_xid(g, 92);
			if (IN(end))
				double_bit_error(g);
			break;
		}
		default: break;
		}
#undef IN
	}
}

/* Poisson-like count of events at rate r over dt: monotone in dt for the same draw. */
static uint64_t events(double rate, double dt, double u)
{
	return (uint64_t)floor(rate * dt + u);
}

/* The gauges at time t from the state's temperatures (control uses the temperature at the
 * start of the step, as a GPU's firmware sees the last reading). */
static void compute_gauges(const struct sim *s, unsigned i, struct gpu_state *g, double t,
                           double dt, uint64_t step)
{
	const struct sim_model *m = s->m;
	uint64_t seed = s->p.seed;
	double load = sim_cycle_load(g->pos0 + t);
	g->load = load;
	g->util = clamp(100.0 * load + 3.0 * noise(seed, i, step, R_UTIL), 0, 100);

	/* cooling: a runaway fault raises the thermal resistance and the inlet over 90 s */
	double r_eff = g->r_th, amb = g->ambient;
	const struct inject_spec *fs = NULL;
	if (active(s, i, INJECT_THERMAL_RUNAWAY, t, &fs)) {
		double c = clamp((t - fs->at) / 90.0, 0, 1);
		r_eff *= 1.0 + 1.2 * c;
		amb += 5.0 * c;
	}

	/* clock control */
	unsigned reasons = 0;
	double c = 1.0, temp = g->temp;
	if (temp >= m->max_op_c) {
		c *= 1.0 - 0.3 * clamp((temp - m->max_op_c) / (m->slowdown_c - m->max_op_c), 0, 1);
		reasons |= SIM_CLK_SW_THERMAL;
	}
	if (temp >= m->slowdown_c)
		g->hw_slow = true;
	else if (temp < m->slowdown_c - 2.0)
		g->hw_slow = false;
	if (g->hw_slow) {
		c = fmin(c, 0.4);
		reasons |= SIM_CLK_HW_THERMAL | SIM_CLK_HW_SLOWDOWN;
	}
	if (active(s, i, INJECT_POWER_BRAKE, t, NULL)) {
		c = fmin(c, 0.3);
		reasons |= SIM_CLK_HW_POWER_BRAKE | SIM_CLK_HW_SLOWDOWN;
	}

	/* power follows load; the power limit caps it */
	double limit = m->power_limit_w;
	double demand = g->idle_w + (1.02 * limit - g->idle_w) * load * g->hunger;
	double p = g->idle_w + (demand - g->idle_w) * c;
	if (p > limit) {
		c *= (limit - g->idle_w) / (p - g->idle_w);
		p = limit;
		reasons |= SIM_CLK_SW_POWER_CAP;
	}
	p = fmin(limit, p * (1.0 + 0.015 * noise(seed, i, step, R_POWER)));
	if (g->util < 1.0)
		reasons |= SIM_CLK_GPU_IDLE;
	g->power = p;
	g->clk_factor = c;
	g->reasons = reasons;

	/* temperature follows power with a lag */
	double tss = amb + r_eff * p;
	double tss_mem = amb + 0.85 * r_eff * p + 4.0;
	if (dt > 0) {
		g->temp += (tss - g->temp) * (1.0 - exp(-dt / TAU_GPU_S));
		g->mem_temp += (tss_mem - g->mem_temp) * (1.0 - exp(-dt / TAU_MEM_S));
	} else {
		g->temp = tss;
		g->mem_temp = tss_mem;
	}
}

/* Advances one GPU over (t0, t0 + dt]. Integrated counters use the rates of the state at t0,
 * so a partial step never counts more than the whole step it is part of. */
static void step_gpu(const struct sim *s, unsigned i, struct gpu_state *g, double t0, double dt,
                     uint64_t step)
{
	const struct sim_model *m = s->m;
	uint64_t seed = s->p.seed;

	double e = g->energy_frac + g->power * dt * 1000.0;
	g->energy_mj += (uint64_t)e;
	g->energy_frac = e - floor(e);
	if (g->reasons & (SIM_CLK_SW_POWER_CAP | SIM_CLK_HW_POWER_BRAKE)) {
		double v = g->power_viol_frac + dt * 1e9;
		g->power_viol_ns += (uint64_t)v;
		g->power_viol_frac = v - floor(v);
	}
	if (g->reasons & (SIM_CLK_SW_THERMAL | SIM_CLK_HW_THERMAL)) {
		double v = g->thermal_viol_frac + dt * 1e9;
		g->thermal_viol_ns += (uint64_t)v;
		g->thermal_viol_frac = v - floor(v);
	}
	double bw = g->nvl_bw_frac + m->nvlink_bytes_per_s * 0.3 * g->load * dt;
	g->nvl_bw += (uint64_t)bw;
	g->nvl_bw_frac = bw - floor(bw);

	double replay_rate = 0.0008;
	if (active(s, i, INJECT_PCIE_REPLAY_STORM, t0, NULL))
		replay_rate += 5.0 * m->pcie_replay_warn_per_min / 60.0;
	g->pcie_replay += events(replay_rate, dt, unif(seed, i, step, R_REPLAY));

	double sbe_r = sbe_rate(s, i, t0);
	uint64_t sbe = events(sbe_r, dt, unif(seed, i, step, R_SBE));
	g->sbe_vol += sbe;
	g->sbe_agg += sbe;
	if (sbe_r > 1.0) /* a storm wears out rows: some get remapped */
		g->corr_rows += events(sbe_r / 40.0, dt, unif(seed, i, step, R_ROWS));
	if (events(2e-9, dt, unif(seed, i, step, R_DBE))) /* very rare spontaneous DBE */
		double_bit_error(g);

	if (active(s, i, INJECT_NVLINK_CRC, t0, NULL)) {
		g->nvl_flit += events(25.0, dt, unif(seed, i, step, R_FLIT));
		g->nvl_data += events(3.0, dt, unif(seed, i, step, R_DATA));
	}

	apply_events(s, i, g, t0, t0 + dt);
	compute_gauges(s, i, g, t0 + dt, dt, step + 1);
}

static bool gpu_present(const struct sim *s, unsigned i, double t)
{
	for (size_t f = 0; f < s->p.n_faults; f++) {
		const struct inject_spec *fs = &s->faults[f];
		if (fs->gpu == i && fs->kind == INJECT_FELL_OFF_BUS &&
		    t >= fault_end(fs, s->p.poll_interval))
			return false;
	}
	return true;
}

static void init_gpu(const struct sim *s, unsigned i, struct gpu_state *g)
{
	const struct sim_model *m = s->m;
	uint64_t seed = s->p.seed;
	memset(g, 0, sizeof(*g));
	/* phases spread evenly over the cycle with a little jitter: never in lock-step, and
	 * GPU 0 starts at the beginning of its idle phase */
	g->pos0 = fmod((double)i * SIM_CYCLE_S / s->p.n_gpus + 15.0 * unif(seed, i, 0, R_POS),
	               SIM_CYCLE_S);
	g->ambient = 26.0 + 6.0 * unif(seed, i, 0, R_AMBIENT);
	g->r_th = R_AT_LIMIT_C / m->power_limit_w * (0.93 + 0.14 * unif(seed, i, 0, R_RTH));
	g->hunger = 0.92 + 0.20 * unif(seed, i, 0, R_HUNGER);
	g->idle_w = m->idle_w_min + (m->idle_w_max - m->idle_w_min) * unif(seed, i, 0, R_IDLE);
	g->fb_bias = 0.05 * noise(seed, i, 0, R_FB);
	/* counters start where days of uptime left them */
	g->energy_mj = (uint64_t)(unif(seed, i, 0, R_ENERGY) * 30 * 86400 * 150.0 * 1000.0);
	g->sbe_agg = (uint64_t)(20 * unif(seed, i, 0, R_SBE0));
	g->nvl_bw = (uint64_t)(unif(seed, i, 0, R_NVBW0) * 1e15);
	compute_gauges(s, i, g, 0, 0, 0);
	apply_events(s, i, g, -1.0, 0.0);
}

#define POD_IDLE_S 60.0 /* the idle phase of sim_cycle_load: no pod holds the GPU */

/* The pod that holds GPU i at time t (sim_params.k8s), or none. */
static void fill_pod(const struct sim *s, unsigned i, const struct gpu_state *g, double t,
                     struct sim_gpu *o)
{
	static const struct {
		const char *ns, *job, *container;
	} jobs[] = {
	    {"training", "llm-7b-worker", "trainer"},
	    {"training", "resnet50-ddp", "pytorch"},
	    {"inference", "vllm-serve", "server"},
	    {"research", "notebook", "jupyter"},
	};
	/* the alphabet of Kubernetes' generated name suffixes */
	static const char alnum[] = "bcdfghjklmnpqrstvwxz2456789";
	o->pod[0] = o->pod_namespace[0] = o->container[0] = '\0';
	if (!s->p.k8s)
		return;
	double at = g->pos0 + t;
	double cycle = floor(at / SIM_CYCLE_S);
	if (at - cycle * SIM_CYCLE_S < POD_IDLE_S)
		return;
	uint64_t h = hash4(s->p.seed, i, (uint64_t)cycle, R_POD);
	size_t j = (size_t)(h % (sizeof(jobs) / sizeof(jobs[0])));
	char suffix[6];
	h >>= 8;
	for (size_t k = 0; k < 5; k++, h /= sizeof(alnum) - 1)
		suffix[k] = alnum[h % (sizeof(alnum) - 1)];
	suffix[5] = '\0';
	snprintf(o->pod, sizeof(o->pod), "%s-%s", jobs[j].job, suffix);
	snprintf(o->pod_namespace, sizeof(o->pod_namespace), "%s", jobs[j].ns);
	snprintf(o->container, sizeof(o->container), "%s", jobs[j].container);
}

static void fill_view(const struct sim *s, unsigned i, const struct gpu_state *g, double t,
                      struct sim_gpu *o)
{
	const struct sim_model *m = s->m;
	uint64_t seed = s->p.seed;
	uint64_t step = (uint64_t)floor(t / SIM_STEP_S);
	double *f = o->f;
	uint64_t *u = o->u;

	o->present = gpu_present(s, i, t);
	fill_pod(s, i, g, t, o);
	double fb_frac = clamp(0.10 + (g->load - 0.10) + g->fb_bias, 0.10, 0.90);
	double fb_avail = (double)(m->fb_total_mib - m->fb_reserved_mib);
	double dram = clamp(g->load * 0.45 + 0.01 * noise(seed, i, step, R_MISC), 0, 1);
	double gr = clamp(g->util / 100.0 * 0.98, 0, 1);

	f[SIM_F_SM_CLOCK] = m->sm_clock_idle + (m->sm_clock_max - m->sm_clock_idle) *
	                                           clamp(g->load / 0.25, 0, 1) * g->clk_factor;
	f[SIM_F_MEM_CLOCK] = m->mem_clock;
	f[SIM_F_MEMORY_TEMP] = g->mem_temp;
	f[SIM_F_GPU_TEMP] = g->temp;
	f[SIM_F_POWER_USAGE] = g->power;
	f[SIM_F_TOTAL_ENERGY] = (double)g->energy_mj;
	f[SIM_F_PCIE_REPLAY] = (double)g->pcie_replay;
	f[SIM_F_GPU_UTIL] = g->util;
	f[SIM_F_MEM_COPY_UTIL] = dram * 100.0;
	f[SIM_F_ENC_UTIL] = 0;
	f[SIM_F_DEC_UTIL] = 0;
	f[SIM_F_XID] = g->xid;
	f[SIM_F_FB_USED] = floor(fb_frac * fb_avail);
	f[SIM_F_FB_FREE] = fb_avail - f[SIM_F_FB_USED];
	f[SIM_F_FB_RESERVED] = (double)m->fb_reserved_mib;
	f[SIM_F_NVLINK_BANDWIDTH_TOTAL] = (double)g->nvl_bw;
	f[SIM_F_VGPU_LICENSE_STATUS] = 0;
	f[SIM_F_UNCORRECTABLE_REMAPPED_ROWS] = (double)g->uncorr_rows;
	f[SIM_F_CORRECTABLE_REMAPPED_ROWS] = (double)g->corr_rows;
	f[SIM_F_ROW_REMAP_FAILURE] = g->remap_failure;
	f[SIM_F_GR_ENGINE_ACTIVE] = gr;
	f[SIM_F_SM_ACTIVE] = gr * 0.93;
	f[SIM_F_SM_OCCUPANCY] = gr * 0.93 * 0.55;
	f[SIM_F_TENSOR_ACTIVE] = gr * 0.93 * 0.6;
	f[SIM_F_DRAM_ACTIVE] = dram;
	f[SIM_F_PCIE_TX_BYTES] = 2e5 + g->load * 1.2e9 * (1.0 + 0.1 * noise(seed, i, step, R_PCIE));
	f[SIM_F_PCIE_RX_BYTES] = 3e5 + g->load * 2.5e9 * (1.0 + 0.1 * noise(seed, i, step, R_PCIE));
	f[SIM_F_ECC_SBE_VOL] = (double)g->sbe_vol;
	f[SIM_F_ECC_DBE_VOL] = (double)g->dbe_vol;
	f[SIM_F_ECC_SBE_AGG] = (double)g->sbe_agg;
	f[SIM_F_ECC_DBE_AGG] = (double)g->dbe_agg;
	f[SIM_F_RETIRED_SBE] = 0;
	f[SIM_F_RETIRED_DBE] = 0;
	f[SIM_F_RETIRED_PENDING] = 0;
	f[SIM_F_ROW_REMAP_PENDING] = g->remap_pending;
	f[SIM_F_CLOCKS_EVENT_REASONS] = g->reasons;
	f[SIM_F_POWER_VIOLATION] = (double)g->power_viol_ns;
	f[SIM_F_THERMAL_VIOLATION] = (double)g->thermal_viol_ns;
	f[SIM_F_NVLINK_CRC_FLIT_ERRORS] = (double)g->nvl_flit;
	f[SIM_F_NVLINK_CRC_DATA_ERRORS] = (double)g->nvl_data;
	f[SIM_F_SLOWDOWN_TEMP] = m->slowdown_c;
	f[SIM_F_SHUTDOWN_TEMP] = m->shutdown_c;
	f[SIM_F_GPU_MAX_OP_TEMP] = m->max_op_c;
	f[SIM_F_POWER_MGMT_LIMIT] = m->power_limit_w;
	f[SIM_F_ENFORCED_POWER_LIMIT] = m->power_limit_w;

	for (unsigned k = 0; k < SIM_F_COUNT; k++)
		u[k] = f[k] > 0 ? (uint64_t)llround(f[k]) : 0;
	/* counters exactly */
	u[SIM_F_TOTAL_ENERGY] = g->energy_mj;
	u[SIM_F_PCIE_REPLAY] = g->pcie_replay;
	u[SIM_F_NVLINK_BANDWIDTH_TOTAL] = g->nvl_bw;
	u[SIM_F_UNCORRECTABLE_REMAPPED_ROWS] = g->uncorr_rows;
	u[SIM_F_CORRECTABLE_REMAPPED_ROWS] = g->corr_rows;
	u[SIM_F_ECC_SBE_VOL] = g->sbe_vol;
	u[SIM_F_ECC_DBE_VOL] = g->dbe_vol;
	u[SIM_F_ECC_SBE_AGG] = g->sbe_agg;
	u[SIM_F_ECC_DBE_AGG] = g->dbe_agg;
	u[SIM_F_POWER_VIOLATION] = g->power_viol_ns;
	u[SIM_F_THERMAL_VIOLATION] = g->thermal_viol_ns;
	u[SIM_F_NVLINK_CRC_FLIT_ERRORS] = g->nvl_flit;
	u[SIM_F_NVLINK_CRC_DATA_ERRORS] = g->nvl_data;

	uint64_t valid = (SIM_F_COUNT >= 64) ? ~0ull : ((1ull << SIM_F_COUNT) - 1);
	if (!g->has_xid)
		valid &= ~(1ull << SIM_F_XID);
	if (!m->has_retired_pages)
		valid &= ~((1ull << SIM_F_RETIRED_SBE) | (1ull << SIM_F_RETIRED_DBE) |
		           (1ull << SIM_F_RETIRED_PENDING));
	o->valid = valid;
}

void sim_destroy(struct sim *s)
{
	if (!s)
		return;
	free(s->faults);
	free(s->base);
	free(s->out);
	free(s);
}

int sim_create(struct sim **out, const struct sim_params *params)
{
	int rc = -ENOMEM;
	struct sim *s = NULL;

	if (!params || !params->model || params->n_gpus == 0 || params->n_gpus > 65536 ||
	    !(params->poll_interval > 0) || (params->n_faults && !params->faults)) {
		rc = -EINVAL;
		goto fail;
	}
	for (size_t f = 0; f < params->n_faults; f++)
		if (params->faults[f].gpu >= params->n_gpus ||
		    params->faults[f].kind >= INJECT_KIND_COUNT || !(params->faults[f].at >= 0)) {
			rc = -EINVAL;
			goto fail;
		}
	s = calloc(1, sizeof(*s));
	if (!s)
		goto fail;
	s->p = *params;
	s->m = params->model;
	if (params->n_faults) {
		s->faults = calloc(params->n_faults, sizeof(*s->faults));
		if (!s->faults)
			goto fail;
		memcpy(s->faults, params->faults, params->n_faults * sizeof(*s->faults));
	}
	s->p.faults = s->faults;
	s->base = calloc(params->n_gpus, sizeof(*s->base));
	s->out = calloc(params->n_gpus, sizeof(*s->out));
	if (!s->base || !s->out)
		goto fail;
	for (unsigned i = 0; i < params->n_gpus; i++) {
		struct sim_gpu *o = &s->out[i];
		uint64_t h1 = hash4(params->seed, i, 0, R_UUID),
		         h2 = hash4(params->seed, i, 0, R_UUID2);
		static const unsigned char bus[8] = {0x07, 0x0f, 0x47, 0x4e,
		                                     0x87, 0x90, 0xb7, 0xbd};
		o->index = i;
		snprintf(o->uuid, sizeof(o->uuid), "GPU-%08x-%04x-%04x-%04x-%012llx",
		         (unsigned)(h1 >> 32), (unsigned)(h1 >> 16) & 0xffffu,
		         (unsigned)h1 & 0xffffu, (unsigned)(h2 >> 48),
		         (unsigned long long)(h2 & 0xffffffffffffull));
		snprintf(o->pci_bus_id, sizeof(o->pci_bus_id), "%08X:%02X:00.0", i / 8u,
		         (unsigned)bus[i % 8]);
		snprintf(o->device, sizeof(o->device), "nvidia%u", i);
		init_gpu(s, i, &s->base[i]);
		fill_view(s, i, &s->base[i], 0, o);
	}
	*out = s; /* caller owns: sim_destroy */
	return 0;
fail:
	sim_destroy(s);
	return rc;
}

int sim_advance(struct sim *s, double t)
{
	if (!isfinite(t) || t < s->t)
		return -EINVAL;
	unsigned n = s->p.n_gpus;
	while ((double)(s->k + 1) * SIM_STEP_S <= t) {
		double t0 = (double)s->k * SIM_STEP_S;
		for (unsigned i = 0; i < n; i++)
			if (gpu_present(s, i, t0))
				step_gpu(s, i, &s->base[i], t0, SIM_STEP_S, s->k);
		s->k++;
	}
	double tb = (double)s->k * SIM_STEP_S;
	for (unsigned i = 0; i < n; i++) {
		if (t > tb) {
			struct gpu_state g = s->base[i];
			step_gpu(s, i, &g, tb, t - tb, s->k);
			fill_view(s, i, &g, t, &s->out[i]);
		} else {
			fill_view(s, i, &s->base[i], t, &s->out[i]);
		}
	}
	s->t = t;
	return 0;
}

double sim_time(const struct sim *s)
{
	return s->t;
}
size_t sim_gpu_count(const struct sim *s)
{
	return s->p.n_gpus;
}
const struct sim_gpu *sim_gpus(const struct sim *s)
{
	return s->out;
}
const struct sim_model *sim_model(const struct sim *s)
{
	return s->m;
}
