#!/usr/bin/env bash
# Writes kmsconf's day-2 metrics for node_exporter's textfile collector: `kmsconf status`,
# `kmsconf doctor` and `kmsconf clients` as OpenMetrics text, each into its own `.prom` file in the collector's
# directory. Each file is first written beside its target under a name the collector skips,
# then renamed over it (atomic), so node_exporter never reads half a file; a run whose output
# does not end with `# EOF` leaves the previous file in place (its age shows in
# `node_textfile_mtime_seconds`, which kmsconf-alerts.yml watches).
#
# Run it from the systemd timer beside it (kmsconf-textfile.timer), or from cron:
#   */5 * * * * kmsconf /usr/local/bin/kmsconf-textfile.sh
# Settings, from the environment: KMSCONF_CONFIG (default /etc/kmsconf/kmsconf.toml),
# TEXTFILE_DIR (default /var/lib/prometheus/node-exporter, where Debian's
# prometheus-node-exporter reads), KMSCONF (the binary; default `kmsconf` on PATH).
set -euo pipefail
config="${KMSCONF_CONFIG:-/etc/kmsconf/kmsconf.toml}"
dir="${TEXTFILE_DIR:-/var/lib/prometheus/node-exporter}"
kmsconf="${KMSCONF:-kmsconf}"

# write NAME COMMAND...: the command's output into $dir/NAME.prom, atomically, when complete
write() {
  local name="$1" tmp
  shift
  tmp="$(mktemp "$dir/.$name.prom.XXXXXX")"
  # status exits 1 when a host cannot be read, doctor when a check failed: the metrics say so
  "$@" > "$tmp" || true
  if [ "$(tail -n 1 "$tmp")" = "# EOF" ]; then
    chmod 0644 "$tmp"
    mv -f "$tmp" "$dir/$name.prom"
  else
    rm -f "$tmp"
    echo "kmsconf-textfile: \`$*\` printed no complete metrics; $dir/$name.prom is left as it was" >&2
    return 1
  fi
}

# `status` reports kmsconf_host_up already, and node_exporter refuses a series two files hold
doctor_checks() {
  "$kmsconf" doctor -c "$config" --format openmetrics | grep -v '^\(# [A-Z]* \)\{0,1\}kmsconf_host_up[ {]'
}

status=0
write kmsconf-status "$kmsconf" status -c "$config" --format openmetrics || status=1
write kmsconf-doctor doctor_checks || status=1
write kmsconf-clients "$kmsconf" clients -c "$config" --format openmetrics || status=1
exit "$status"
