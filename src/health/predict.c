#include "health/predict.h"

#include <math.h>
#include <string.h>

static double clampd(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

static void term(struct prediction *p, const char *name, double x, double b)
{
	if (p->nterms == PREDICT_MAX_TERMS)
		return;
	p->terms[p->nterms].name = name;
	p->terms[p->nterms].x = x;
	p->terms[p->nterms].contribution = b * x;
	p->z += b * x;
	p->nterms++;
}

void predict_eval(const struct health_trends *t, enum health_status status, double horizon_h,
		  struct prediction *out)
{
	memset(out, 0, sizeof(*out));
	out->horizon_h = horizon_h > 0 ? horizon_h : PREDICT_BASE_HORIZON_H;
	out->z = PREDICT_B0;
	double rate = fmax(t->sbe_per_h, 0);
	term(out, "sbe_rate", log10(1.0 + rate), PREDICT_B_SBE_RATE);
	double g = 0;
	if (t->sbe_count >= PREDICT_SBE_GROWTH_MIN_COUNT)
		g = clampd(log2((1.0 + fmax(t->sbe_per_h_recent, 0)) / (1.0 + rate)), 0, 3);
	term(out, "sbe_growth", g, PREDICT_B_SBE_GROWTH);
	term(out, "remapped_rows_24h", log10(1.0 + fmax(t->corr_rows_24h, 0)), PREDICT_B_ROWS);
	term(out, "pending", t->pending ? 1.0 : 0.0, PREDICT_B_PENDING);
	term(out, "thermal_violation", clampd(t->thermal_frac, 0, 1), PREDICT_B_THERMAL);
	term(out, "pcie_replay", clampd(t->pcie_ratio, 0, 4), PREDICT_B_PCIE);
	double heat = isfinite(t->temp_margin_c)
			      ? clampd((PREDICT_HEAT_MARGIN_C - t->temp_margin_c) / PREDICT_HEAT_MARGIN_C, 0, 1)
			      : 0;
	term(out, "temp_margin", heat, PREDICT_B_HEAT);

	double p24 = 1.0 / (1.0 + exp(-out->z));
	out->probability = 1.0 - pow(1.0 - p24, out->horizon_h / PREDICT_BASE_HORIZON_H);
	/* what addresses the strongest trend: memory wear -> reset (activates pending remaps,
	 * clears volatile counters), heat and links -> drain and inspect */
	double mem = out->terms[0].contribution + out->terms[1].contribution +
		     out->terms[2].contribution + out->terms[3].contribution;
	double other = out->terms[4].contribution + out->terms[5].contribution +
		       out->terms[6].contribution;
	out->required = mem >= other ? ACT_RESET : ACT_DRAIN;
	if (status == HEALTH_FAIL) {
		out->failing = true;
		out->probability = 1.0;
	}
	out->probability = clampd(out->probability, 0, 1);
}

enum health_status predict_risk_status(double probability, double level, bool open)
{
	if (probability >= level)
		return HEALTH_WARN;
	if (open && probability >= level * PREDICT_CLEAR_FRACTION)
		return HEALTH_WARN;
	return HEALTH_PASS;
}
