# Promotion gate: may the candidate model take the alias of input.environment?
#
# This file is the same for every policy pack; a pack is its data. data.thresholds is the installed
# pack's thresholds.yaml: `pack` (its name), `default` limits and per-environment entries. An
# environment's own entry replaces whole sections of `default` (a section it leaves out keeps the
# default one; sections are not merged key by key).
#
# input is the candidate's evidence summary: metrics, fairness per sensitive feature, the champion that
# holds the alias now with its metrics on the candidate's own held-out rows (null on a first release,
# for the champion itself, or when the champion cannot score the candidate's columns; `comparison`
# says which), the model card check (does model_card.yaml still hold the template's demo text, and is
# the data the demo file?) and the result of the evidence integrity check.
#
# allow is true only when deny is empty. Every deny reason names the value, the limit and the
# environment, so whoever reads it in the pull request knows what to fix. A value that is absent, null
# or not a number denies: a gate that cannot check a limit must not pass it.
#
# The rules are plain Rego v1 and give the same answers under OPA (`opa eval -d promotion.rego
# -d thresholds.yaml -i input.json data.promotion`, with thresholds.yaml loaded under `thresholds`)
# and regopy (rego-cpp), which is why two shortcuts are avoided: sprintf("%.3f") (OPA prints integral
# numbers such as 0 or 1.0 as "%!f(int64=...)", so three_decimals formats numbers) and passing the
# result of replace, concat or lower to sprintf (regopy 1.5 then wraps it in quotes and emits invalid
# JSON; concat builds those messages instead).
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

comparison := object.get(input, "comparison", {})

card_check := object.get(input, "model_card", null)

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

# Model card: a pack may require, per environment (`model_card.require_own_text`), that
# model_card.yaml no longer holds the template's demo text once the data is not the demo file ----

requires_own_card_text if object.get(limits, ["model_card", "require_own_text"], false) == true

demo_text_fields := object.get(input, ["model_card", "demo_text"], [])

card_describes_other_data if {
	is_array(demo_text_fields)
	count(demo_text_fields) > 0
	card_check.demo_data == false
}

deny contains reason if {
	requires_own_card_text
	card_describes_other_data
	reason := concat("", [
		"model_card.yaml still holds the template's demo text (",
		concat(", ", sort(demo_text_fields)),
		"), which describes the demo data set: rewrite these keys for this model and its data before promoting to ",
		environment,
	])
}

deny contains reason if {
	requires_own_card_text
	not card_check_complete
	reason := sprintf(
		"the input holds no model card check (model_card.demo_text, model_card.demo_data), required in %s",
		[environment],
	)
}

card_check_complete if {
	is_array(object.get(input, ["model_card", "demo_text"], null))
	is_boolean(object.get(input, ["model_card", "demo_data"], null))
}

# Notes: what the gate did not check, and why ------------------------------------------------------

notes contains note if {
	champion == null
	not object.get(comparison, "status", "first_release") in {"is_champion", "new_schema"}
	note := sprintf("no champion in %s yet: first release, regression check passes", [environment])
}

notes contains note if {
	comparison.status == "is_champion"
	note := sprintf(
		"version %v is the current champion in %s: nothing to compare it with",
		[comparison.version, environment],
	)
}

notes contains note if {
	comparison.status == "new_schema"
	note := sprintf(
		"champion version %v in %s cannot score the candidate's columns (%s): first release for the new schema, regression check passes",
		[comparison.version, environment, comparison.detail],
	)
}

notes contains note if {
	champion != null
	comparison.status == "compared"
	note := sprintf(
		"compared with champion version %v on the candidate's own %v held-out rows",
		[champion.version, comparison.rows],
	)
}

notes contains note if {
	champion != null
	comparison.same_data == false
	note := sprintf(
		"champion version %v was trained on other data: some of these held-out rows may have been in its training set",
		[champion.version],
	)
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
	not requires_own_card_text
	card_describes_other_data
	note := concat("", [
		"model_card.yaml still holds the template's demo text (",
		concat(", ", sort(demo_text_fields)),
		"): rewrite these keys for this model and its data",
	])
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
