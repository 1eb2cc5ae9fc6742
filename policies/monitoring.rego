# Monitoring decision: what should happen to an environment after a window of live traffic?
#
# This file is the same for every policy pack; a pack's limits are its monitoring.yaml, passed as
# data.monitoring_limits (`pack`, `default` limits and per-environment entries; an environment's own
# entry replaces whole sections of `default`, as in thresholds.yaml). The canary analysis limits are
# the environment's own (environments/<env>.yaml, rollout.analysis), passed in the input with the
# rollout they belong to.
#
# input is the monitoring report: drift statistics per feature and of the score against the
# champion's reference profile, live performance per variant from the labels that came back, live
# fairness per sensitive feature, traffic per variant, and the environment's rollout.
#
# action is one of ok | warn | retrain | advance | hold | rollback, the most severe that applies in
# this order: rollback, retrain, advance, hold, warn, ok. `canary` (advance | hold | rollback) and
# `retrain` (true | false) are also given on their own, so that a drifted window that asks for
# retraining still lets a passing canary advance. advance, hold and rollback only apply to a
# challenger under canary: advance when the analysis passed over at least rollout.analysis
# .min_requests requests (next_weight is the next of rollout.steps), hold while it is undecided,
# rollback when it failed. Every reason names the feature or metric, the value, the limit and the
# environment. The number formatting helper is promotion.rego's (see there why it exists).
package monitoring

import data.promotion

environment := input.environment

environment_overrides := object.get(data.monitoring_limits, ["environments", environment], {})

limits := object.union(
	object.remove(data.monitoring_limits.default, object.keys(environment_overrides)),
	environment_overrides,
)

drift_limits := limits.drift

features := object.get(input, "features", {})

score := object.get(input, "score", {})

fmt(x) := promotion.three_decimals(x)

# Drift --------------------------------------------------------------------------------------------
# A feature drifts when its PSI exceeds the limit and its test (KS for numbers, chi-square for
# categories) rejects "same distribution" at max_p_value; both, because on a large window the test
# alone flags shifts too small to matter and on a small one the PSI alone flags noise. A categorical
# feature also drifts when too many live values are categories the training data never had.

measured(report) if report.rows >= drift_limits.min_rows

p_value(report) := report.ks_p_value if report.kind == "numeric"

p_value(report) := report.chi2_p_value if report.kind == "categorical"

test_name(report) := "KS" if report.kind == "numeric"

test_name(report) := "chi-square" if report.kind == "categorical"

psi_drifted contains name if {
	some name, report in features
	measured(report)
	is_number(report.psi)
	report.psi > drift_limits.max_psi
	is_number(p_value(report))
	p_value(report) < drift_limits.max_p_value
}

unseen_drifted contains name if {
	some name, report in features
	report.kind == "categorical"
	measured(report)
	is_number(report.unseen_share)
	report.unseen_share > drift_limits.max_unseen_share
}

drifted_features := psi_drifted | unseen_drifted

is_drifted(name) := true if {
	name in drifted_features
} else := false

drifted := {name: is_drifted(name) | some name, _ in features}

score_drifted if {
	measured(score)
	is_number(score.psi)
	score.psi > drift_limits.max_score_psi
	is_number(score.ks_p_value)
	score.ks_p_value < drift_limits.max_p_value
}

default score_is_drifted := false

score_is_drifted if score_drifted

drift_reasons contains reason if {
	some name in psi_drifted
	report := features[name]
	reason := sprintf(
		"PSI of %s is %s, limit %s in %s (%s p-value %s, limit %s)",
		[
			name, fmt(report.psi), fmt(drift_limits.max_psi), environment,
			test_name(report), fmt(p_value(report)), fmt(drift_limits.max_p_value),
		],
	)
}

drift_reasons contains reason if {
	some name in unseen_drifted
	report := features[name]
	reason := sprintf(
		"share of unseen categories of %s is %s, limit %s in %s",
		[name, fmt(report.unseen_share), fmt(drift_limits.max_unseen_share), environment],
	)
}

score_reasons contains reason if {
	score_drifted
	reason := sprintf(
		"PSI of the score is %s, limit %s in %s (KS p-value %s, limit %s)",
		[
			fmt(score.psi), fmt(drift_limits.max_score_psi), environment,
			fmt(score.ks_p_value), fmt(drift_limits.max_p_value),
		],
	)
}

notes contains note if {
	some name, report in features
	not measured(report)
	note := sprintf(
		"drift of %s not judged: %v live rows, %v needed in %s",
		[name, report.rows, drift_limits.min_rows, environment],
	)
}

# Live performance (labels joined from the feedback store) -----------------------------------------

performance := object.get(input, "performance", {})

performance_limits := limits.performance

labelled_enough(figures) if figures.labels >= performance_limits.min_labels

performance_reasons contains reason if {
	figures := object.get(performance, "champion", {})
	labelled_enough(figures)
	some metric, minimum in performance_limits.min_metrics
	value := figures[metric]
	is_number(value)
	value < minimum
	reason := sprintf(
		"live %s of the champion is %s, minimum %s in %s (%v labels)",
		[metric, fmt(value), fmt(minimum), environment, figures.labels],
	)
}

notes contains note if {
	some variant, figures in performance
	not labelled_enough(figures)
	note := sprintf(
		"live performance of the %s not judged: %v labels, %v needed in %s",
		[variant, figures.labels, performance_limits.min_labels, environment],
	)
}

# Live fairness (the evidence bundle's definitions, on the labelled live rows) ---------------------

fairness := object.get(input, "fairness", {})

fairness_kind_names := {"demographic_parity": "demographic parity", "equalized_odds": "equalized odds"}

fairness_reasons contains reason if {
	some kind, limit in limits.fairness.max_fairness_difference
	some feature, report in fairness
	object.get(report, "rows", 0) >= performance_limits.min_labels
	value := report[sprintf("%s_difference", [kind])]
	is_number(value)
	value > limit
	reason := sprintf(
		"live %s difference for %s is %s, limit %s in %s",
		[object.get(fairness_kind_names, kind, kind), feature, fmt(value), fmt(limit), environment],
	)
}

# Retrain or warn ----------------------------------------------------------------------------------

retrain_reasons contains reason if {
	count(drifted_features) >= drift_limits.retrain_drifted_features
	reason := concat("", [
		sprintf("%v features drifted (", [count(drifted_features)]),
		concat(", ", sort(drifted_features)),
		sprintf("), retraining from %v in %s", [drift_limits.retrain_drifted_features, environment]),
	])
}

retrain_reasons contains reason if {
	some reason in score_reasons
}

retrain_reasons contains reason if {
	some reason in performance_reasons
}

warn_reasons := drift_reasons | fairness_reasons

# Canary analysis of a challenger ------------------------------------------------------------------

rollout := object.get(input, "rollout", {})

analysis := object.get(rollout, "analysis", {})

challenger := object.get(input, ["traffic", "challenger"], null)

champion := object.get(input, ["traffic", "champion"], {})

under_canary if {
	rollout.strategy == "canary"
	challenger != null
}

weight := object.get(rollout, "challenger_weight", 0)

enough_requests if challenger.requests >= analysis.min_requests

rollback_reasons contains reason if {
	under_canary
	enough_requests
	is_number(challenger.error_rate)
	challenger.error_rate > analysis.max_error_rate
	reason := sprintf(
		"error rate of the challenger is %s, limit %s in %s (%v requests)",
		[fmt(challenger.error_rate), fmt(analysis.max_error_rate), environment, challenger.requests],
	)
}

# Failed requests that no later success can bring under the limit at min_requests fail it now.
rollback_reasons contains reason if {
	under_canary
	not enough_requests
	challenger.errors > analysis.max_error_rate * analysis.min_requests
	reason := sprintf(
		"the challenger failed %v requests, more than the error rate limit %s allows over the %v requests of the analysis in %s",
		[challenger.errors, fmt(analysis.max_error_rate), analysis.min_requests, environment],
	)
}

rollback_reasons contains reason if {
	under_canary
	enough_requests
	is_number(challenger.latency_ms.p99)
	challenger.latency_ms.p99 > analysis.max_p99_latency_ms
	reason := sprintf(
		"p99 latency of the challenger is %s ms, limit %s ms in %s",
		[fmt(challenger.latency_ms.p99), fmt(analysis.max_p99_latency_ms), environment],
	)
}

rollback_reasons contains reason if {
	under_canary
	ours := object.get(performance, "challenger", {})
	theirs := object.get(performance, "champion", {})
	labelled_enough(ours)
	labelled_enough(theirs)
	is_number(ours.accuracy)
	is_number(theirs.accuracy)
	theirs.accuracy - ours.accuracy > limits.canary.max_accuracy_regression
	reason := sprintf(
		"live accuracy of the challenger is %s against the champion's %s, tolerance %s in %s",
		[fmt(ours.accuracy), fmt(theirs.accuracy), fmt(limits.canary.max_accuracy_regression), environment],
	)
}

hold_reasons contains reason if {
	under_canary
	not enough_requests
	count(rollback_reasons) == 0
	reason := sprintf(
		"the challenger answered %v requests, the canary analysis needs %v in %s",
		[challenger.requests, analysis.min_requests, environment],
	)
}

hold_reasons contains reason if {
	under_canary
	not is_number(challenger.error_rate)
	reason := sprintf(
		"the challenger's error rate cannot be measured (the log records no request status) in %s",
		[environment],
	)
}

hold_reasons contains reason if {
	under_canary
	not is_number(object.get(challenger, ["latency_ms", "p99"], null))
	reason := sprintf(
		"the challenger's p99 latency cannot be measured (the log records no latency) in %s",
		[environment],
	)
}

later_steps := {step | some step in object.get(rollout, "steps", []); step > weight}

# The smallest later step, found by comparison: regopy 1.5's min() of a set of numbers returns the
# largest, and indexing the result of sort() is undefined there.
next_weight := step if {
	count(rollback_reasons) == 0
	count(hold_reasons) == 0
	under_canary
	some step in later_steps
	count({other | some other in later_steps; other < step}) == 0
}

target_weight := next_weight if {
	count(later_steps) > 0
} else := weight

canary_passed if {
	under_canary
	count(rollback_reasons) == 0
	count(hold_reasons) == 0
}

advance_reasons contains reason if {
	canary_passed
	reason := sprintf(
		"the challenger passed the canary analysis over %v requests in %s (error rate %s, limit %s; p99 %s ms, limit %s ms): weight %v -> %v",
		[
			challenger.requests, environment, fmt(challenger.error_rate), fmt(analysis.max_error_rate),
			fmt(challenger.latency_ms.p99), fmt(analysis.max_p99_latency_ms), weight, target_weight,
		],
	)
}

notes contains note if {
	canary_passed
	count(later_steps) == 0
	note := sprintf(
		"the challenger passed at the last step of rollout.steps (%v%%) in %s: promote it to champion",
		[weight, environment],
	)
}

# The canary's own verdict, whatever else applies (undefined without a challenger under canary) ---

canary := "rollback" if {
	count(rollback_reasons) > 0
} else := "advance" if {
	canary_passed
	count(later_steps) > 0
} else := "hold" if {
	under_canary
}

default retrain := false

retrain if count(retrain_reasons) > 0

# The action ---------------------------------------------------------------------------------------

action := "rollback" if {
	count(rollback_reasons) > 0
} else := "retrain" if {
	count(retrain_reasons) > 0
} else := "advance" if {
	canary_passed
	count(later_steps) > 0
} else := "hold" if {
	count(hold_reasons) > 0
} else := "warn" if {
	count(warn_reasons) > 0
} else := "ok"
