# uci2toml.awk: turns `uci show push-appserver` output into push-appserver's
# TOML configuration. A pure function of its input (no uci, no files), so it
# is tested off the router (packaging/openwrt/test/run.sh) with POSIX awk,
# mawk, gawk and busybox awk (OpenWrt's).
#
#   uci show push-appserver | awk -f uci2toml.awk > push-appserver.toml
#
# Mapping (see /etc/config/push-appserver):
#   config push-appserver 'main'  data_dir, log_level, log_format, rate_limit,
#                                 debugging at the top; http_X, store_X,
#                                 limits_X, registrations_X, metrics_X as X
#                                 in [http], [store], [limits],
#                                 [registrations], [metrics]; enabled and
#                                 config_file belong to the init script.
#   config component              one [[component]] each; list type -> types
#   config app 'NAME'             [app.NAME]
#   config table 'NAME'           [NAME], for sections without a UCI mapping
# log_format: procd hands the server's stderr to logd, which stamps each line
# itself, and the server cannot tell (it picks "journal" by itself only under
# systemd): unset or 'auto' becomes "journal" (no timestamp of its own, the
# level as a <N> prefix); 'plain' stays.
# UCI has no types: listed boolean keys become true/false, listed (or
# integer-looking by name) numeric keys become integers, lists become arrays
# of strings, anything else a string; check-config then refuses what is wrong.
# Exit status 1, with the line on stderr, on input that is not `uci show`.

function fail(msg) {
	printf "uci2toml: line %d: %s\n", NR, msg > "/dev/stderr"
	failed = 1
	exit 1
}

# Splits a `uci show` value ('a' 'b', with ' written as '\'') into vals[1..n].
function parse_value(s,    n, i, c, cur, inq, started) {
	n = 0; cur = ""; inq = 0; started = 0
	for (i = 1; i <= length(s); i++) {
		c = substr(s, i, 1)
		if (inq) {
			if (c == "'") inq = 0; else cur = cur c
		} else if (c == "'") {
			inq = 1; started = 1
		} else if (c == "\\") {
			i++
			if (i > length(s)) fail("dangling backslash")
			cur = cur substr(s, i, 1); started = 1
		} else if (c == " ") {
			if (started) { vals[++n] = cur; cur = ""; started = 0 }
		} else {
			cur = cur c; started = 1
		}
	}
	if (inq) fail("unterminated quote")
	if (started) vals[++n] = cur
	return n
}

# Character by character: awks disagree on backslashes in gsub replacements.
function toml_string(s,    i, c, out) {
	out = ""
	for (i = 1; i <= length(s); i++) {
		c = substr(s, i, 1)
		if (c == "\\" || c == "\"") out = out "\\" c
		else if (c == "\t") out = out "\\t"
		else out = out c
	}
	return "\"" out "\""
}

function is_bool_key(k) {
	return k ~ /^(enabled|debugging|open_unregister|sandbox|mutable_content|collapse_pushes|include_summary)$/
}

function is_int_key(k) {
	return k ~ /^(rate_limit|threads|requests_per_second|max_connections|cache_mb|max_registrations|max_in_flight|max_per_jid|max_per_domain|push_ttl|delay_ms)$/ ||
		k ~ /(_secs|_ms|_mb|_bytes)$/ || k ~ /^commands_per_minute/
}

function toml_value(k, n,    i, v, out) {
	if (islist) {
		out = "["
		for (i = 1; i <= n; i++) out = out (i > 1 ? ", " : "") toml_string(vals[i])
		return out "]"
	}
	v = vals[1]
	if (is_bool_key(k)) {
		if (v ~ /^(1|yes|on|true|enabled)$/) return "true"
		if (v ~ /^(0|no|off|false|disabled)$/) return "false"
	}
	if (is_int_key(k) && v ~ /^-?[0-9]+$/) return v
	return toml_string(v)
}

# Appends "key = value" to the table named t, remembering table order.
function emit(t, line) {
	if (!(t in body)) order[++ntables] = t
	body[t] = body[t] line "\n"
}

{
	eq = index($0, "=")
	if (eq == 0) fail("not a uci show line")
	key = substr($0, 1, eq - 1)
	value = substr($0, eq + 1)
	nk = split(key, k, ".")
	if (nk < 2 || nk > 3) fail("unexpected key " key)
	sec = k[2]

	if (nk == 2) {
		# A section header: the value is its type (unquoted; quoted by some uci versions).
		n = parse_value(value)
		if (n != 1) fail("section " sec " has no type")
		stype[sec] = vals[1]
		if (vals[1] == "component") {
			ncomp++
			table[sec] = "component#" ncomp
		} else if (vals[1] == "app") {
			if (sec ~ /^@/) fail("app sections must be named after their push type")
			table[sec] = "app." sec
		} else if (vals[1] == "table") {
			if (sec ~ /^@/) fail("table sections must be named")
			table[sec] = sec
		} else if (vals[1] == "push-appserver") {
			table[sec] = ""
		} else {
			fail("unknown section type " vals[1])
		}
		next
	}

	if (!(sec in stype)) fail("option of unknown section " sec)
	opt = k[3]
	# `uci show` prints a one-item list like an option: list-ness of the
	# known list keys comes from their names.
	islist = 0
	n = parse_value(value)
	if (n < 1) fail("empty value for " key)
	if (n > 1) islist = 1
	t = table[sec]

	if (stype[sec] == "push-appserver") {
		if (opt == "enabled" || opt == "config_file") next
		if (opt == "log_format") {
			log_format_set = 1
			if (n == 1 && vals[1] == "auto") vals[1] = "journal"
		}
		if (match(opt, /^(http|store|limits|registrations|metrics)_/)) {
			t = substr(opt, 1, RLENGTH - 1)
			opt = substr(opt, RLENGTH + 1)
		}
	} else if (stype[sec] == "component" && opt == "type") {
		opt = "types"; islist = 1
	}
	if (opt == "trusted_proxies") islist = 1
	emit(t, opt " = " toml_value(opt, n))
}

END {
	if (failed) exit 1
	if (!log_format_set) emit("", "log_format = \"journal\"")
	printf "# Generated from /etc/config/push-appserver by uci2toml.awk: edit the UCI\n"
	printf "# config (uci set/commit, or LuCI), not this file.\n"
	if ("" in body) printf "%s", body[""]
	for (i = 1; i <= ntables; i++) {
		t = order[i]
		if (t == "") continue
		if (t ~ /^component#/) printf "\n[[component]]\n%s", body[t]
		else printf "\n[%s]\n%s", t, body[t]
	}
}
