#!/bin/sh
# The add-on's start script: /data/options.json (written by the Supervisor from the add-on's
# options) becomes the bridge's TOML; with no broker URL in the options the broker comes from
# the Supervisor's MQTT service (GET $SUPERVISOR_API/services/mqtt, the Mosquitto broker
# add-on's answer); then the bridge replaces this shell (it gets SIGTERM and publishes
# `offline`). Needs sh, jq and curl (HA's base images have them).
#
# A configuration the bridge refuses is one line in the add-on log, and the add-on then waits
# (reporting healthy) instead of exiting: an exit would only be restarted by the watchdog into
# the same error, a crash loop. Saving valid options and restarting the add-on recovers.
set -eu

options=${BANDWIDTH2MQTT_OPTIONS:-/data/options.json}
config=${BANDWIDTH2MQTT_CONFIG:-/tmp/bandwidth2mqtt.toml}
api=${SUPERVISOR_API:-http://supervisor}
parked=/tmp/bandwidth2mqtt.parked
rm -f "$parked"

log() { printf 'bandwidth2mqtt add-on: %s\n' "$*" >&2; }

park() {
  log "$*"
  : > "$parked"
  trap 'exit 0' TERM INT
  while :; do
    sleep 3600 &
    wait $! || true
  done
}

[ -r "$options" ] || park "cannot read $options (the Supervisor writes it from the add-on's options)"
jq -e 'type == "object"' "$options" >/dev/null 2>&1 || park "$options is not a JSON object"

# The broker: the options' URL, else the Supervisor's MQTT service, retried for a minute
# (the Mosquitto add-on may still be starting at boot).
broker='{}'
broker_note=
if [ -z "$(jq -r '.mqtt.url // empty' "$options")" ]; then
  [ -n "${SUPERVISOR_TOKEN:-}" ] || park "no MQTT broker: set mqtt.url in the options (no Supervisor token to ask for the Mosquitto add-on's)"
  answer=
  tries=${BANDWIDTH2MQTT_ADDON_MQTT_TRIES:-12}
  while [ "$tries" -gt 0 ]; do
    tries=$((tries - 1))
    if answer=$(curl -fsS --max-time 10 -H "Authorization: Bearer ${SUPERVISOR_TOKEN}" \
      "$api/services/mqtt" 2>/dev/null) && [ -n "$(printf '%s' "$answer" | jq -r '.data.host // empty' 2>/dev/null)" ]; then
      break
    fi
    answer=
    [ "$tries" -eq 0 ] || sleep 5
  done
  [ -n "$answer" ] || park "no MQTT broker: the Supervisor offers no MQTT service; install and start the Mosquitto broker add-on, or set mqtt.url in the options"
  broker=$(printf '%s' "$answer" | jq -c '.data')
  host=$(printf '%s' "$broker" | jq -r '.host')
  # A host-network add-on may not resolve the broker add-on's name (core-mosquitto); that
  # add-on publishes its port on the host, which is this add-on's 127.0.0.1.
  if command -v getent >/dev/null 2>&1 && ! getent hosts "$host" >/dev/null 2>&1; then
    log "the broker's name $host does not resolve here; using 127.0.0.1"
    broker=$(printf '%s' "$broker" | jq -c '.host = "127.0.0.1"')
  fi
  broker_note="MQTT broker from the Supervisor: $(printf '%s' "$broker" | jq -r '"\(if .ssl then "mqtts" else "mqtt" end)://\(.host):\(.port) (the service of \(.addon // .app // "an add-on"))"')"
fi

# options.json → TOML. Strings go through tojson: a JSON string is a valid TOML basic string
# (jq writes `/` unescaped and control characters as \uXXXX). Empty strings are left out.
umask 077
jq -r --argjson broker "$broker" '
  def s: tojson;
  def kv($k; $v): if $v == null or $v == "" then empty
    elif ($v | type) == "array" then "\($k) = [\($v | map(tojson) | join(", "))]"
    elif ($v | type) == "string" then "\($k) = \($v | s)"
    else "\($k) = \($v)" end;
  def table($name; $obj; $keys): "[\($name)]", ($keys[] as $k | kv($k; $obj[$k])), "";
  def name_key: if test("^[A-Za-z0-9_-]+$") then . else tojson end;
  (.mqtt // {}) as $m
  | (if ($m.url // "") != "" then $m
     else $m + {url: "\(if $broker.ssl then "mqtts" else "mqtt" end)://\($broker.host):\($broker.port)",
                username: ($m.username // $broker.username),
                password: ($m.password // $broker.password)} end) as $mqtt
  | table("mqtt"; $mqtt; ["url", "username", "password", "base_topic", "discovery_prefix",
                          "discovery", "retain_state", "ca_file"]),
    table("bridge"; (.bridge // {}) + {log_level: (.log_level // "info"), state_dir: "/data"};
          ["state_dir", "log_level", "consider_home", "timezone", "month_start_day",
           "random_macs", "forget_after", "include", "exclude"]),
    table("host"; (.host // {enabled: true}); ["enabled", "name", "interval", "interfaces", "exclude"]),
    ((.vnstat // [])[] | table("vnstat.\(.name | name_key)"; .; ["command", "interval", "timeout", "mac"])),
    ((.asus // [])[] | table("asus.\(.name | name_key)"; .;
          ["url", "username", "password", "interval", "verify_tls", "tls_fingerprint", "traffic_analyzer"])),
    ((.deco // [])[] | table("deco.\(.name | name_key)"; .; ["url", "password", "interval", "speed_unit", "tls_fingerprint"])),
    ((.devices // [])[] | "[devices.\(.mac | ascii_downcase | gsub("-"; ":") | tojson)]", kv("name"; .name), "")
' "$options" > "$config" || park "cannot turn $options into a configuration"

# The bridge's own check: one line naming the option (TOML key) and what is wrong with it.
if ! why=$(/usr/bin/bandwidth2mqtt check-config -c "$config" 2>&1 >/dev/null); then
  park "invalid option: $(printf '%s' "$why" | head -n 1 | sed "s|^bandwidth2mqtt: ||; s|invalid configuration ($config): ||")"
fi

[ -z "$broker_note" ] || log "$broker_note"
exec /usr/bin/bandwidth2mqtt run -c "$config"
