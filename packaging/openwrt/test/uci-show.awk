# Test helper: prints what OpenWrt's `uci show CONFIG` prints for a UCI file
# (config/option/list lines, single or double quotes or bare words), so the
# shipped /etc/config/push-appserver can be fed to uci2toml.awk off the
# router. Format: CONFIG.SECTION=TYPE, CONFIG.SECTION.OPTION='value', a list
# as 'a' 'b', an anonymous section as @TYPE[N], ' written as '\''.
# Usage: awk -v config=push-appserver -f uci-show.awk FILE
function unquote(s) {
	if (s ~ /^'.*'$/ || s ~ /^".*"$/) return substr(s, 2, length(s) - 2)
	return s
}
function q(s) {
	gsub(/'/, "'\\''", s)
	return "'" s "'"
}
function flush(    i, name, o) {
	if (sec == "") return
	printf "%s.%s=%s\n", config, sec, stype
	for (i = 1; i <= nopts; i++) {
		name = onames[i]
		printf "%s.%s.%s=%s\n", config, sec, name, ovals[name]
	}
	nopts = 0
	split("", ovals)
}
/^[ \t]*(#|$)/ { next }
{
	line = $0
	sub(/^[ \t]+/, "", line)
	kw = line; sub(/[ \t].*/, "", kw)
	rest = substr(line, length(kw) + 1); sub(/^[ \t]+/, "", rest); sub(/[ \t]+$/, "", rest)
	if (kw == "config") {
		flush()
		stype = rest; sub(/[ \t].*/, "", stype)
		name = substr(rest, length(stype) + 1); sub(/^[ \t]+/, "", name)
		if (name == "") sec = "@" stype "[" (count[stype]++) "]"
		else { sec = unquote(name); count[stype]++ }
		next
	}
	oname = rest; sub(/[ \t].*/, "", oname)
	val = substr(rest, length(oname) + 1); sub(/^[ \t]+/, "", val)
	val = q(unquote(val))
	if (kw == "option") {
		if (!(oname in ovals)) onames[++nopts] = oname
		ovals[oname] = val
	} else if (kw == "list") {
		if (!(oname in ovals)) { onames[++nopts] = oname; ovals[oname] = val }
		else ovals[oname] = ovals[oname] " " val
	} else {
		printf "uci-show: line %d: unknown keyword %s\n", NR, kw > "/dev/stderr"
		exit 1
	}
}
END { flush() }
