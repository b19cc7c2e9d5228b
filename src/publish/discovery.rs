//! Home Assistant discovery configs: one retained, single-component config per entity
//! (zigbee2mqtt's shape; see shared/protocols/ha-discovery.md §2 and the goldens in
//! `ha-discovery/`). Long key names, because they are greppable and size does not matter.

use serde_json::{Map, Value, json};

use super::topics::Topics;
use super::units;
use crate::accounting::Device;
use crate::model::{DeviceKind, MacAddr, MetricUnit};

/// One entity's discovery message.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityConfig {
    pub component: &'static str,
    /// The `<node>/<object>` part of the topic.
    pub node: String,
    pub object: String,
    pub payload: Value,
}

impl EntityConfig {
    pub fn topic(&self, topics: &Topics) -> String {
        topics.discovery(self.component, &self.node, &self.object)
    }
}

/// What every discovery payload shares.
pub struct Context<'a> {
    pub topics: &'a Topics,
    pub version: &'a str,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Measure {
    Bytes,
    Rate,
}

struct Metric {
    key: &'static str,
    name: &'static str,
    icon: &'static str,
    measure: Measure,
}

/// Today and this month (design.md "Period totals"): bytes, reset at the period's start, which
/// is what `total_increasing` means to HA.
const PERIODS: [Metric; 4] = [
    Metric {
        key: "rx_today",
        name: "downloaded today",
        icon: "mdi:download",
        measure: Measure::Bytes,
    },
    Metric {
        key: "tx_today",
        name: "uploaded today",
        icon: "mdi:upload",
        measure: Measure::Bytes,
    },
    Metric {
        key: "rx_month",
        name: "downloaded this month",
        icon: "mdi:download",
        measure: Measure::Bytes,
    },
    Metric {
        key: "tx_month",
        name: "uploaded this month",
        icon: "mdi:upload",
        measure: Measure::Bytes,
    },
];

/// The closed day and billing month (design.md "Previous periods"): final at the rollover, so
/// no state class (a value that drops at each rollover is not a total HA should add up).
const PREVIOUS: [Metric; 4] = [
    Metric {
        key: "rx_yesterday",
        name: "downloaded yesterday",
        icon: "mdi:download",
        measure: Measure::Bytes,
    },
    Metric {
        key: "tx_yesterday",
        name: "uploaded yesterday",
        icon: "mdi:upload",
        measure: Measure::Bytes,
    },
    Metric {
        key: "rx_last_month",
        name: "downloaded last month",
        icon: "mdi:download",
        measure: Measure::Bytes,
    },
    Metric {
        key: "tx_last_month",
        name: "uploaded last month",
        icon: "mdi:upload",
        measure: Measure::Bytes,
    },
];

/// The `complete_since` entry (state.rs) of a period entity's key.
fn period_of(key: &str) -> &'static str {
    match key.split_once('_').map_or(key, |(_, p)| p) {
        "today" => "today",
        "month" => "month",
        "yesterday" => "yesterday",
        _ => "last_month",
    }
}

/// A period entity carries from when its figure is whole as its `complete_since` attribute
/// (beside `estimated` when the headline is an estimate); a previous period has no state class.
fn period_entity(mut e: EntityConfig, metric: &Metric, state_topic: &str, previous: bool) -> EntityConfig {
    if let Value::Object(p) = &mut e.payload {
        if previous {
            p.remove("state_class");
        }
        let period = period_of(metric.key);
        let estimated = if p.contains_key("json_attributes_template") {
            ", 'estimated': true"
        } else {
            ""
        };
        p.insert("json_attributes_topic".into(), json!(state_topic));
        p.insert(
            "json_attributes_template".into(),
            json!(format!(
                "{{{{ {{'complete_since': value_json.complete_since.{period}{estimated}}} | tojson }}}}"
            )),
        );
    }
    e
}

const TRAFFIC: [Metric; 4] = [
    Metric {
        key: "rx_bytes",
        name: "downloaded",
        icon: "mdi:download",
        measure: Measure::Bytes,
    },
    Metric {
        key: "tx_bytes",
        name: "uploaded",
        icon: "mdi:upload",
        measure: Measure::Bytes,
    },
    Metric {
        key: "rx_bps",
        name: "download rate",
        icon: "mdi:download-network",
        measure: Measure::Rate,
    },
    Metric {
        key: "tx_bps",
        name: "upload rate",
        icon: "mdi:upload-network",
        measure: Measure::Rate,
    },
];

impl Context<'_> {
    fn origin(&self) -> Value {
        json!({"name": "bandwidth2mqtt", "sw_version": self.version})
    }

    fn unique_id(&self, device: &str, key: &str) -> String {
        format!("{}_{device}_{key}", self.topics.base_slug())
    }

    fn availability(&self, sources: impl IntoIterator<Item = String>) -> Value {
        let mut list = vec![json!({"topic": self.topics.bridge_state()})];
        list.extend(
            sources
                .into_iter()
                .map(|s| json!({"topic": self.topics.source_availability(&s)})),
        );
        Value::Array(list)
    }

    fn device_block(&self, device: &Device) -> Value {
        let mut block = Map::new();
        block.insert(
            "identifiers".into(),
            json!([format!("{}_{}", self.topics.base_slug(), device.id)]),
        );
        let connections: Vec<Value> = device
            .info
            .macs
            .iter()
            .filter(|m| m.is_meaningful())
            .map(|m: &MacAddr| json!(["mac", m.to_string()]))
            .collect();
        if !connections.is_empty() {
            block.insert("connections".into(), Value::Array(connections));
        }
        block.insert("name".into(), json!(device.name()));
        for (key, value) in [
            ("manufacturer", &device.info.manufacturer),
            ("model", &device.info.model),
            ("sw_version", &device.info.sw_version),
        ] {
            if let Some(v) = value {
                block.insert(key.into(), json!(v));
            }
        }
        let via = match &device.info.via {
            Some(parent) => format!("{}_{parent}", self.topics.base_slug()),
            None => self.topics.bridge_node(),
        };
        block.insert("via_device".into(), json!(via));
        Value::Object(block)
    }

    /// Discovery for every entity of a device.
    pub fn device_entities(&self, device: &Device) -> Vec<EntityConfig> {
        let b = DeviceEntities {
            ctx: self,
            device,
            state_topic: self.topics.device_state(&device.id),
            device_block: self.device_block(device),
            entity_slug: entity_slug(device),
        };
        let mut out = vec![b.online()];
        if device.kind == DeviceKind::Client {
            out.push(b.presence());
        }
        for (key, label) in &device.labels {
            out.push(b.label(key, &label.name));
        }
        for (key, metric) in &device.metrics {
            out.push(b.gauge(key, &metric.name, metric.unit));
        }
        if device.has_traffic {
            let prefix = if device.kind == DeviceKind::Router { "WAN " } else { "" };
            // Rates only where some source measures them (hourly byte counts do not).
            for metric in &TRAFFIC {
                if metric.measure == Measure::Bytes || !device.rate_sources.is_empty() {
                    out.push(b.traffic(None, metric, prefix));
                }
            }
            if device.today.is_some() {
                for (metric, previous) in PERIODS
                    .iter()
                    .map(|m| (m, false))
                    .chain(PREVIOUS.iter().map(|m| (m, true)))
                {
                    out.push(period_entity(
                        b.traffic(None, metric, prefix),
                        metric,
                        &b.state_topic,
                        previous,
                    ));
                }
            }
            if device.quota.is_some() {
                out.extend(b.plan());
            }
            // A single-interface server: the device is the interface, no twins. The parts of
            // a client (the private-address group's members) are in its state, not entities.
            let single = (device.kind == DeviceKind::Server && device.interfaces.len() == 1)
                || device.kind == DeviceKind::Client;
            for (name, iface) in device.interfaces.iter().filter(|_| !single) {
                for metric in &TRAFFIC {
                    if metric.measure == Measure::Bytes || iface.rate_source.is_some() {
                        out.push(b.traffic(Some(name), metric, ""));
                    }
                }
            }
            for (source, view) in super::state::secondary_views(device) {
                for metric in &TRAFFIC {
                    if metric.measure == Measure::Bytes || (view.has_rates() && !device.rate_sources.contains(source)) {
                        out.push(b.secondary(source, view.label.as_deref().unwrap_or(source), metric));
                    }
                }
            }
        }
        out
    }

    /// The bridge's own device: connection state, version, one status per source.
    pub fn bridge_entities(&self, sources: &[String]) -> Vec<EntityConfig> {
        let node = self.topics.bridge_node();
        let device = json!({
            "identifiers": [node],
            "name": "bandwidth2mqtt bridge",
            "manufacturer": "bandwidth2mqtt",
            "model": "Bridge",
            "sw_version": self.version,
        });
        let entity = |object: &str, name: &str, component: &'static str, extra: Value| {
            let mut p = Map::new();
            p.insert("name".into(), json!(name));
            p.insert("unique_id".into(), json!(format!("{node}_{object}")));
            p.insert("object_id".into(), json!(format!("{node}_{object}")));
            p.insert(
                "default_entity_id".into(),
                json!(format!("{component}.{node}_{object}")),
            );
            p.insert("entity_category".into(), json!("diagnostic"));
            p.insert("device".into(), device.clone());
            p.insert("origin".into(), self.origin());
            if let Value::Object(extra) = extra {
                p.extend(extra);
            }
            EntityConfig {
                component,
                node: node.clone(),
                object: object.into(),
                payload: Value::Object(p),
            }
        };
        let mut out = vec![
            // No availability: it must be able to show "disconnected".
            entity(
                "connection_state",
                "Connection state",
                "binary_sensor",
                json!({
                    "state_topic": self.topics.bridge_state(),
                    "device_class": "connectivity",
                    "payload_on": "online",
                    "payload_off": "offline",
                }),
            ),
            entity(
                "version",
                "Version",
                "sensor",
                json!({
                    "state_topic": self.topics.bridge_info(),
                    "value_template": "{{ value_json.version }}",
                    "icon": "mdi:information-outline",
                    "availability": [{"topic": self.topics.bridge_state()}],
                }),
            ),
            // The `restart` command (shared/design.md), as a button.
            entity(
                "restart",
                "Restart",
                "button",
                json!({
                    "command_topic": format!("{}/bridge/request/restart", self.topics.base),
                    "payload_press": "",
                    "icon": "mdi:restart",
                    "availability": [{"topic": self.topics.bridge_state()}],
                }),
            ),
            // The running version; with no internet the latest version stays unknown.
            entity(
                "update",
                "Firmware",
                "update",
                json!({
                    "state_topic": self.topics.bridge_info(),
                    "value_template": "{{ value_json.version }}",
                    "title": "bandwidth2mqtt",
                    "availability": [{"topic": self.topics.bridge_state()}],
                }),
            ),
        ];
        for source in sources {
            out.push(entity(
                &format!("source_{source}"),
                &format!("Source {source}"),
                "binary_sensor",
                json!({
                    "state_topic": self.topics.source_availability(source),
                    "device_class": "connectivity",
                    "payload_on": "online",
                    "payload_off": "offline",
                    "availability": [{"topic": self.topics.bridge_state()}],
                }),
            ));
        }
        out
    }
}

/// Builds the entities of one device; every payload shares the state topic and device block.
struct DeviceEntities<'a> {
    ctx: &'a Context<'a>,
    device: &'a Device,
    state_topic: String,
    device_block: Value,
    /// The device part of the suggested entity ids: its name, or its id when it has none.
    entity_slug: String,
}

impl DeviceEntities<'_> {
    fn base(&self, key: &str, name: Option<String>, component: &'static str) -> Map<String, Value> {
        let id = self.device.id.as_str();
        let object = if key.is_empty() {
            self.entity_slug.clone()
        } else {
            format!("{}_{key}", self.entity_slug)
        };
        let unique_key = if key.is_empty() { component } else { key };
        let mut p = Map::new();
        p.insert("name".into(), json!(name));
        p.insert("unique_id".into(), json!(self.ctx.unique_id(id, unique_key)));
        p.insert("object_id".into(), json!(object));
        p.insert("default_entity_id".into(), json!(format!("{component}.{object}")));
        p.insert("state_topic".into(), json!(self.state_topic));
        p.insert("availability_mode".into(), json!("all"));
        p.insert("device".into(), self.device_block.clone());
        p.insert("origin".into(), self.ctx.origin());
        p
    }

    fn entity(&self, component: &'static str, object: &str, payload: Map<String, Value>) -> EntityConfig {
        EntityConfig {
            component,
            node: self.device.id.as_str().to_owned(),
            object: object.to_owned(),
            payload: Value::Object(payload),
        }
    }

    fn online(&self) -> EntityConfig {
        let mut p = self.base("online", Some("Online".into()), "binary_sensor");
        p.insert("device_class".into(), json!("connectivity"));
        p.insert(
            "value_template".into(),
            json!("{{ 'ON' if value_json.online else 'OFF' }}"),
        );
        p.insert("payload_on".into(), json!("ON"));
        p.insert("payload_off".into(), json!("OFF"));
        let sources: Vec<String> = if self.device.kind == DeviceKind::Server {
            // A server's online state is derived from whether its sources answer, so it must
            // stay available to be able to say "disconnected" when they do not.
            p.insert("entity_category".into(), json!("diagnostic"));
            Vec::new()
        } else {
            self.device.sources.iter().cloned().collect()
        };
        p.insert("availability".into(), self.ctx.availability(sources));
        self.entity("binary_sensor", "online", p)
    }

    /// A router-style tracker: `home`/`not_home`, with ip, mac and host name as attributes.
    fn presence(&self) -> EntityConfig {
        let mut p = self.base("", None, "device_tracker");
        p.insert(
            "unique_id".into(),
            json!(self.ctx.unique_id(self.device.id.as_str(), "presence")),
        );
        p.insert("source_type".into(), json!("router"));
        p.insert("value_template".into(), json!("{{ value_json.presence }}"));
        p.insert("payload_home".into(), json!("home"));
        p.insert("payload_not_home".into(), json!("not_home"));
        p.insert(
            "json_attributes_topic".into(),
            json!(self.ctx.topics.device_attributes(&self.device.id)),
        );
        p.insert("icon".into(), json!("mdi:lan-connect"));
        // Not the sources' availability: a router outage shorter than consider_home keeps the
        // tracker at its last state; the state says when it has lasted longer.
        p.insert(
            "availability".into(),
            json!([
                {"topic": self.ctx.topics.bridge_state()},
                {"topic": self.state_topic, "value_template": "{{ 'online' if value_json.presence_available | default(true) else 'offline' }}"},
            ]),
        );
        self.entity("device_tracker", "presence", p)
    }

    fn label(&self, key: &str, name: &str) -> EntityConfig {
        let mut p = self.base(key, Some(name.to_owned()), "sensor");
        p.insert("value_template".into(), json!(format!("{{{{ value_json.{key} }}}}")));
        let icon = match key {
            "ip" => "mdi:ip-network",
            "connection" => "mdi:wifi-settings",
            _ => "mdi:information-outline",
        };
        p.insert("icon".into(), json!(icon));
        if key == "ip" {
            p.insert("entity_category".into(), json!("diagnostic"));
        }
        let source = self.device.label_sources.get(key).cloned();
        p.insert("availability".into(), self.ctx.availability(source));
        self.entity("sensor", key, p)
    }

    fn gauge(&self, key: &str, name: &str, unit: MetricUnit) -> EntityConfig {
        let mut p = self.base(key, Some(name.to_owned()), "sensor");
        p.insert("value_template".into(), json!(format!("{{{{ value_json.{key} }}}}")));
        fill_gauge(&mut p, key, unit);
        let source = self.device.metric_sources.get(key).cloned();
        p.insert("availability".into(), self.ctx.availability(source));
        self.entity("sensor", key, p)
    }

    /// Another source's view of a headline measure: hidden by default, named for its source
    /// (design.md "Secondary numbers"), `unique_id` `<base>_<device>_<source>_<key>`.
    fn secondary(&self, source: &str, label: &str, metric: &Metric) -> EntityConfig {
        let key = format!("{}_{}", topic_slug(source), metric.key);
        let name = format!("{} ({label})", capitalise(metric.name));
        let mut p = self.base(&key, Some(name), "sensor");
        let path = format!("value_json.views[{}].{}", jinja_string(source), metric.key);
        // Until the source has counted, the key is absent: unknown, not an error in HA's log.
        let guard = format!(
            "value_json.views is defined and {} in value_json.views",
            jinja_string(source)
        );
        fill_metric(&mut p, metric, &path, self.device.kind, Some(&guard));
        // Out of the way but recorded: hidden (not disabled, which records nothing), so its
        // history is there the day someone wants to compare.
        p.insert("visible_by_default".into(), json!(false));
        p.insert("entity_category".into(), json!("diagnostic"));
        p.insert("availability".into(), self.ctx.availability([source.to_owned()]));
        self.entity("sensor", &key, p)
    }

    /// A data plan (design.md "Period totals and data plans"): what is left of the quota, and
    /// a `problem` sensor that turns on at the plan's `warn_at`.
    fn plan(&self) -> [EntityConfig; 2] {
        let sources = self.device.total_sources.clone();
        let mut p = self.base("quota_remaining", Some("Data plan remaining".into()), "sensor");
        let shown = units::display(units::Span::Long, self.device.kind);
        p.insert(
            "value_template".into(),
            json!(units::template("value_json.quota_remaining", shown.divisor, None)),
        );
        p.insert("icon".into(), json!("mdi:gauge"));
        p.insert("device_class".into(), json!("data_size"));
        p.insert("unit_of_measurement".into(), json!(shown.unit));
        // It goes down as the period goes on, and back up when a new one starts.
        p.insert("state_class".into(), json!("measurement"));
        p.insert("suggested_display_precision".into(), json!(shown.precision));
        p.insert("json_attributes_topic".into(), json!(self.state_topic));
        p.insert(
            "json_attributes_template".into(),
            json!("{{ {'quota': value_json.quota, 'used': value_json.quota_used, 'period': value_json.quota_period} | tojson }}"),
        );
        p.insert("availability".into(), self.ctx.availability(sources.clone()));
        let remaining = self.entity("sensor", "quota_remaining", p);
        let mut p = self.base("over_quota", Some("Data plan exceeded".into()), "binary_sensor");
        p.insert("device_class".into(), json!("problem"));
        p.insert(
            "value_template".into(),
            json!("{{ 'ON' if value_json.over_quota else 'OFF' }}"),
        );
        p.insert("payload_on".into(), json!("ON"));
        p.insert("payload_off".into(), json!("OFF"));
        p.insert("availability".into(), self.ctx.availability(sources));
        [remaining, self.entity("binary_sensor", "over_quota", p)]
    }

    fn traffic(&self, iface: Option<&String>, metric: &Metric, prefix: &str) -> EntityConfig {
        let device = self.device;
        let (key, name, path, sources, estimated) = match iface {
            None => (
                metric.key.to_owned(),
                capitalise(&format!("{prefix}{}", metric.name)),
                format!("value_json.{}", metric.key),
                match metric.measure {
                    Measure::Bytes => device.total_sources.clone(),
                    Measure::Rate => device.rate_sources.clone(),
                },
                device.estimated,
            ),
            Some(iface_name) => {
                let iface = device.interfaces.get(iface_name);
                let keys = super::interface_key::interface_keys(device.interfaces.keys().map(String::as_str));
                let iface_key = keys
                    .get(iface_name.as_str())
                    .cloned()
                    .unwrap_or_else(|| topic_slug(iface_name));
                (
                    format!("{iface_key}_{}", metric.key),
                    format!("{iface_name} {}", metric.name),
                    format!("value_json.interfaces[{}].{}", jinja_string(iface_name), metric.key),
                    iface
                        .and_then(|i| match metric.measure {
                            Measure::Bytes => i.total_source.clone(),
                            Measure::Rate => i.rate_source.clone(),
                        })
                        .into_iter()
                        .collect(),
                    iface.is_some_and(|i| i.estimated),
                )
            }
        };
        let name = match (metric.measure, estimated) {
            (Measure::Bytes, true) => format!("{name} (estimated)"),
            _ => name,
        };
        let mut p = self.base(&key, Some(name), "sensor");
        fill_metric(&mut p, metric, &path, device.kind, None);
        if estimated && matches!(metric.measure, Measure::Bytes) {
            // Integrated from instantaneous rates: say so where automations can see it.
            p.insert("json_attributes_topic".into(), json!(self.state_topic));
            p.insert(
                "json_attributes_template".into(),
                json!("{{ {'estimated': true} | tojson }}"),
            );
        }
        p.insert("availability".into(), self.ctx.availability(sources));
        self.entity("sensor", &key, p)
    }
}

/// The initial entity id part for a device: its name, as HA itself would derive it ("RT-AX86U
/// Pro" → `sensor.rt_ax86u_pro_rx_bytes`, not the config key's `sensor.home_rx_bytes`); its id
/// when the name has no letter or digit. HA only uses it at first discovery; a later rename
/// leaves entity ids and history alone, and users may rename entities themselves.
fn entity_slug(device: &Device) -> String {
    if let Some(pinned) = &device.entity_slug {
        return pinned.clone();
    }
    crate::model::DeviceId::slugify(device.name())
        .map(|d| d.to_string())
        .unwrap_or_else(|| device.id.to_string())
}

/// Class, unit and template of a byte or rate entity: shown in MiB, GiB or Mbit/s (units.rs),
/// divided from the exact integer at `path`.
fn fill_metric(p: &mut Map<String, Value>, metric: &Metric, path: &str, kind: DeviceKind, guard: Option<&str>) {
    let shown = units::display(units::Span::of_key(metric.key), kind);
    p.insert(
        "value_template".into(),
        json!(units::template(path, shown.divisor, guard)),
    );
    p.insert("icon".into(), json!(metric.icon));
    let (device_class, state_class) = match metric.measure {
        Measure::Bytes => ("data_size", "total_increasing"),
        Measure::Rate => ("data_rate", "measurement"),
    };
    p.insert("device_class".into(), json!(device_class));
    p.insert("unit_of_measurement".into(), json!(shown.unit));
    p.insert("state_class".into(), json!(state_class));
    p.insert("suggested_display_precision".into(), json!(shown.precision));
}

/// Unit, device class and category of a gauge (shared/protocols/ha-discovery.md §13).
fn fill_gauge(p: &mut Map<String, Value>, key: &str, unit: MetricUnit) {
    let (device_class, unit_text, icon, precision) = match unit {
        MetricUnit::Percent if key.contains("cpu") => (None, Some("%"), "mdi:cpu-64-bit", 1),
        MetricUnit::Percent if key.contains("mem") => (None, Some("%"), "mdi:memory", 1),
        MetricUnit::Percent => (None, Some("%"), "mdi:gauge", 1),
        MetricUnit::Celsius => (Some("temperature"), Some("°C"), "mdi:thermometer", 1),
        MetricUnit::Seconds => (Some("duration"), Some("s"), "mdi:timer-outline", 0),
        MetricUnit::Count => (None, None, "mdi:devices", 0),
        MetricUnit::Dbm => (Some("signal_strength"), Some("dBm"), "mdi:wifi", 0),
        MetricUnit::MbitPerSecond => (Some("data_rate"), Some("Mbit/s"), "mdi:speedometer", 1),
    };
    if let Some(dc) = device_class {
        p.insert("device_class".into(), json!(dc));
    }
    if let Some(u) = unit_text {
        p.insert("unit_of_measurement".into(), json!(u));
    }
    p.insert("state_class".into(), json!("measurement"));
    p.insert("icon".into(), json!(icon));
    p.insert("suggested_display_precision".into(), json!(precision));
    // The client count is what people put on dashboards; the rest is diagnostics.
    if unit != MetricUnit::Count {
        p.insert("entity_category".into(), json!("diagnostic"));
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// An interface name as a topic and id fragment: `[a-z0-9_]` only (`br-lan` → `br_lan`).
pub fn topic_slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A Jinja string literal, so any interface name is safe inside a template.
fn jinja_string(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_and_literals_are_safe() {
        assert_eq!(topic_slug("br-lan"), "br_lan");
        assert_eq!(topic_slug("eth0.100"), "eth0_100");
        assert_eq!(jinja_string("it's"), r"'it\'s'");
        assert_eq!(capitalise("download rate"), "Download rate");
    }
}
