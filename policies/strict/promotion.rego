# Promotion gate: may the candidate model take the alias of input.environment?
#
# data.thresholds is this pack's thresholds.yaml. An environment's own entry replaces whole sections of
# `default` (a section it leaves out keeps the default one; sections are not merged key by key).
# input is the candidate's evidence summary: metrics, fairness per sensitive feature, the champion that
# holds the alias now (null on a first release) and the result of the evidence integrity check.
#
# allow is true only when deny is empty. Every deny reason names the value, the limit and the
# environment, so whoever reads it in the pull request knows what to fix. A value that is absent, null
# or not a number denies: a gate that cannot check a limit must not pass it.
#
# The rules are plain Rego v1 and give the same answers under OPA and regopy (rego-cpp), which is why
# two shortcuts are avoided: sprintf("%.3f") (OPA prints integral numbers such as 0 or 1.0 as
# "%!f(int64=...)", so three_decimals formats numbers) and passing the result of replace, concat or
# lower to sprintf (regopy 1.5 then wraps it in quotes and emits invalid JSON; concat builds those
# messages instead).
package promotion

default allow := false

allow if {
	is_string(input.environment)
	count(deny) == 0
}

environment := input.environment

environment_overrides := object.get(data.thresholds, ["environments", environment], {})

# Section-level override: the environment's sections replace the default ones whole.
limits := object.union(
	object.remove(data.thresholds.default, object.keys(environment_overrides)),
	environment_overrides,
)

metrics := object.get(input, "metrics", {})

fairness := object.get(input, "fairness", {})

champion := object.get(input, "champion", null)

# Minimum metrics ----------------------------------------------------------------------------------

deny contains reason if {
	some name, minimum in limits.min_metrics
	value := metrics[name]
	is_number(value)
	value < minimum
	reason := sprintf(
		"%s is %s, minimum %s in %s",
		[name, three_decimals(value), three_decimals(minimum), environment],
	)
}

deny contains reason if {
	some name, minimum in limits.min_metrics
	problem := unavailable(metrics, name)
	reason := sprintf("%s %s, minimum %s in %s", [name, problem, three_decimals(minimum), environment])
}

# Fairness: differences (0 = parity) must stay under their limit, ratios (1 = parity) above theirs --

deny contains reason if {
	some kind, limit in limits.max_fairness_difference
	some feature, report in fairness
	value := report[sprintf("%s_difference", [kind])]
	is_number(value)
	value > limit
	reason := sprintf(
		"%s difference for %s is %s, limit %s in %s",
		[readable(kind), feature, three_decimals(value), three_decimals(limit), environment],
	)
}

deny contains reason if {
	some kind, minimum in limits.min_fairness_ratio
	some feature, report in fairness
	value := report[sprintf("%s_ratio", [kind])]
	is_number(value)
	value < minimum
	reason := sprintf(
		"%s ratio for %s is %s, minimum %s in %s",
		[readable(kind), feature, three_decimals(value), three_decimals(minimum), environment],
	)
}

deny contains reason if {
	some kind, limit in limits.max_fairness_difference
	some feature, report in fairness
	problem := unavailable(report, sprintf("%s_difference", [kind]))
	reason := sprintf(
		"%s difference for %s %s, limit %s in %s",
		[readable(kind), feature, problem, three_decimals(limit), environment],
	)
}

deny contains reason if {
	some kind, minimum in limits.min_fairness_ratio
	some feature, report in fairness
	problem := unavailable(report, sprintf("%s_ratio", [kind]))
	reason := sprintf(
		"%s ratio for %s %s, minimum %s in %s",
		[readable(kind), feature, problem, three_decimals(minimum), environment],
	)
}

# No regression against the champion (higher-is-better metrics) ------------------------------------

deny contains reason if {
	champion != null
	some name, tolerance in limits.max_regression
	value := metrics[name]
	previous := champion.metrics[name]
	is_number(value)
	is_number(previous)
	previous - value > tolerance
	reason := sprintf(
		"%s regressed by %s against champion version %v (%s -> %s), tolerance %s in %s",
		[
			name, three_decimals(previous - value), champion.version,
			three_decimals(previous), three_decimals(value), three_decimals(tolerance), environment,
		],
	)
}

deny contains reason if {
	champion != null
	some name, _ in limits.max_regression
	problem := unavailable(metrics, name)
	reason := sprintf(
		"%s %s, so it cannot be compared with champion version %v in %s",
		[name, problem, champion.version, environment],
	)
}

# Evidence files: present and unchanged since evidence.json recorded their digests ------------------

deny contains reason if {
	some name in input.evidence.missing
	reason := sprintf("evidence file %s is missing", [name])
}

deny contains reason if {
	some name in input.evidence.tampered
	reason := sprintf("evidence file %s does not match its sha256 in evidence.json", [name])
}

unchecked_evidence := "the input holds no evidence check (evidence.missing, evidence.tampered)"

deny contains unchecked_evidence if not is_array(object.get(input, ["evidence", "missing"], null))

deny contains unchecked_evidence if not is_array(object.get(input, ["evidence", "tampered"], null))

# Notes: what the gate did not check, and why ------------------------------------------------------

notes contains note if {
	champion == null
	note := sprintf("no champion in %s yet: first release, regression check passes", [environment])
}

notes contains note if {
	champion != null
	some name, _ in limits.max_regression
	not is_number(object.get(champion, ["metrics", name], null))
	note := sprintf(
		"champion version %v has no %s: regression check skipped for it in %s",
		[champion.version, name, environment],
	)
}

notes contains note if {
	not environment in object.keys(object.get(data.thresholds, "environments", {}))
	note := sprintf("%s has no entry in thresholds.yaml: default limits apply", [environment])
}

notes contains note if {
	count(fairness) == 0
	note := sprintf("no sensitive feature was audited: fairness limits not applied in %s", [environment])
}

notes contains note if {
	some feature, report in fairness
	groups := object.get(report, "small_groups", [])
	count(groups) > 0
	note := concat("", [
		sprintf("%s groups with fewer than %v rows (", [feature, object.get(input, "min_group_size", "the minimum number of")]),
		concat(", ", sort(groups)),
		"): their fairness figures are uncertain",
	])
}

# Helpers ------------------------------------------------------------------------------------------

# Why document[key] cannot be checked; undefined when it holds a number.
unavailable(document, key) := "is missing" if {
	not key in object.keys(document)
} else := "cannot be computed (the evidence holds null)" if {
	document[key] == null
} else := sprintf("is not a number (%v)", [document[key]]) if {
	not is_number(document[key])
}

fairness_kind_names := {"demographic_parity": "demographic parity", "equalized_odds": "equalized odds"}

readable(kind) := object.get(fairness_kind_names, kind, kind)

# x rounded to three decimals, always printed with three: 0.85 -> "0.850", 1 -> "1.000".
three_decimals(x) := text if {
	thousandths := round(abs(x) * 1000)
	whole := floor(thousandths / 1000)
	fraction := thousandths - (whole * 1000)
	padded_fraction := substring(sprintf("%d", [1000 + fraction]), 1, 3)
	text := sprintf("%s%d.%s", [minus_sign(x, thousandths), whole, padded_fraction])
}

minus_sign(x, thousandths) := "-" if {
	x < 0
	thousandths > 0
} else := ""
