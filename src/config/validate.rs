//! Checks that need more than types: URL shape, topic rules, names that become ids.

use std::time::Duration;

use super::load::ConfigError;
use super::{ConfigSource, Settings};
use crate::model::{DeviceId, MacAddr};
use crate::table::check_interval;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MqttTransport {
    Tcp,
    Tls,
}

/// A parsed `mqtt://` / `mqtts://` broker address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttUrl {
    pub transport: MqttTransport,
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for MqttUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = match self.transport {
            MqttTransport::Tcp => "mqtt",
            MqttTransport::Tls => "mqtts",
        };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

impl MqttUrl {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| format!("`{text}` is not a URL; write mqtt://host:1883 or mqtts://host:8883"))?;
        let (transport, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "mqtt" | "tcp" => (MqttTransport::Tcp, 1883),
            "mqtts" | "ssl" | "tls" => (MqttTransport::Tls, 8883),
            other => {
                return Err(format!("unsupported scheme `{other}`; use mqtt:// or mqtts://"));
            }
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains('@') {
            return Err("credentials in the URL are not supported; use mqtt.username and mqtt.password".into());
        }
        if authority.contains('/') || authority.contains('?') {
            return Err(format!("`{text}` has a path; the URL names only host and port"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or("unclosed `[` in the host")?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(format!("`{text}` has no host"));
        }
        let port = match port {
            None => default_port,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("`{p}` is not a port number"))?,
        };
        Ok(Self {
            transport,
            host: host.to_owned(),
            port,
        })
    }
}

pub fn validate(settings: &Settings, source: &ConfigSource) -> Result<MqttUrl, ConfigError> {
    let err = |key: &str, message: String| ConfigError::at(source, key, message);
    let mqtt = &settings.mqtt;
    let url = MqttUrl::parse(&mqtt.url).map_err(|m| err("mqtt.url", m))?;
    check_topic(&mqtt.base_topic).map_err(|m| err("mqtt.base_topic", m))?;
    // It becomes part of every unique_id and HA's default entity ids, which are lower case.
    if mqtt.base_topic.chars().any(char::is_uppercase) {
        return Err(err(
            "mqtt.base_topic",
            format!(
                "`{}` has upper case letters; use lower case (HA entity ids are lower case)",
                mqtt.base_topic
            ),
        ));
    }
    check_topic(&mqtt.discovery_prefix).map_err(|m| err("mqtt.discovery_prefix", m))?;
    if mqtt.base_topic == mqtt.discovery_prefix {
        return Err(err("mqtt.base_topic", "must differ from mqtt.discovery_prefix".into()));
    }
    if let Some(topic) = &mqtt.ha_status_topic {
        check_topic(topic).map_err(|m| err("mqtt.ha_status_topic", m))?;
    }
    if mqtt.client_id.trim().is_empty() {
        return Err(err("mqtt.client_id", "must not be empty".into()));
    }
    if !(1024..=268_435_455).contains(&mqtt.max_packet_size) {
        return Err(err(
            "mqtt.max_packet_size",
            "must be between 1024 and 268435455 bytes".into(),
        ));
    }
    if mqtt.client_cert_file.is_some() != mqtt.client_key_file.is_some() {
        return Err(err(
            "mqtt.client_key_file",
            "client_cert_file and client_key_file go together".into(),
        ));
    }
    for (key, path) in [
        ("mqtt.ca_file", &mqtt.ca_file),
        ("mqtt.client_cert_file", &mqtt.client_cert_file),
        ("mqtt.client_key_file", &mqtt.client_key_file),
    ] {
        if let Some(path) = path
            && !path.is_file()
        {
            return Err(err(key, format!("{} does not exist", path.display())));
        }
    }
    if url.transport == MqttTransport::Tcp && (mqtt.ca_file.is_some() || mqtt.client_cert_file.is_some()) {
        return Err(err(
            "mqtt.url",
            "TLS files are set but the URL is mqtt://; use mqtts://".into(),
        ));
    }
    check_interval(mqtt.keep_alive, 5).map_err(|m| err("mqtt.keep_alive", m))?;
    check_interval(mqtt.refresh_interval, 1).map_err(|m| err("mqtt.refresh_interval", m))?;
    if mqtt.keep_alive > Duration::from_secs(u16::MAX.into()) {
        return Err(err("mqtt.keep_alive", "must be at most 18h".into()));
    }

    if !["error", "warn", "info", "debug", "trace"].contains(&settings.bridge.log_level.as_str()) {
        return Err(err(
            "bridge.log_level",
            format!(
                "`{}` is not one of error, warn, info, debug, trace",
                settings.bridge.log_level
            ),
        ));
    }

    if !["text", "json"].contains(&settings.bridge.log_format.as_str()) {
        return Err(err(
            "bridge.log_format",
            format!("`{}` is not one of text, json", settings.bridge.log_format),
        ));
    }

    // Each source table's own checks (declared in its folder, `sources/<kind>/spec.rs`).
    super::tables::validate_tables(settings).map_err(|(key, m)| err(&key, m))?;

    // An agent `x` is the source `agent_x` (bridge/agents.rs): no other table may take that.
    let named = super::tables::named(settings);
    if let Some((table, name)) = named.iter().find(|(_, n)| n.starts_with("agent_")) {
        return Err(err(
            &format!("{table}.{name}"),
            format!(
                "names starting with `agent_` are the sources of agents ([agents.{}])",
                &name[6..]
            ),
        ));
    }
    for (name, agent) in &settings.agents {
        let key = |k: &str| format!("agents.{name}.{k}");
        if DeviceId::new(name).is_err() {
            return Err(err(
                &format!("agents.{name}"),
                format!(
                    "`{name}` is not a valid agent name: use lower-case letters, digits and `_` (the agent's [host] name)"
                ),
            ));
        }
        if let Some(bps) = agent.max_bps
            && !(bps.is_finite() && bps > 0.0)
        {
            return Err(err(&key("max_bps"), "must be a positive number of bit/s".into()));
        }
    }

    // Source names share one namespace: they name `bridge/source/<name>` and device ids.
    let mut seen = std::collections::BTreeMap::new();
    for (table, name) in named {
        if let Some(other) = seen.insert(name, table) {
            return Err(err(
                &format!("{table}.{name}"),
                format!("the name is already used by [{other}.{name}]"),
            ));
        }
    }

    if let Err(e) =
        crate::household::periods::Calendar::new(settings.bridge.timezone.as_deref(), settings.bridge.month_start_day)
    {
        let key = match e {
            crate::household::periods::CalendarError::TimeZone(_) => "bridge.timezone",
            crate::household::periods::CalendarError::MonthStartDay(_) => "bridge.month_start_day",
        };
        return Err(err(key, e.to_string()));
    }

    super::household_rules::check(settings).map_err(|(key, m)| err(&key, m))?;

    // One physical thing per MAC (design.md "Identity"): a MAC claimed twice would put it in
    // two HA devices' `connections`, which HA refuses.
    let mut claimed: std::collections::BTreeMap<MacAddr, String> = std::collections::BTreeMap::new();
    let servers = super::tables::server_macs(settings)
        .into_iter()
        .map(|s| (s.key, s.macs))
        .chain(settings.agents.iter().map(|(n, a)| (format!("agents.{n}.mac"), &a.mac)));
    for (key, macs) in servers {
        for mac in macs {
            if let Some(first) = claimed.insert(*mac, key.clone())
                && first != key
            {
                return Err(err(
                    &key,
                    format!("{mac} is already the MAC of `{first}`; a MAC belongs to one server"),
                ));
            }
        }
    }
    for text in settings.devices.keys() {
        let key = format!("devices.{text}");
        let mac = text.parse::<MacAddr>().map_err(|e| err(&key, e.to_string()))?;
        if let Some(server) = claimed.get(&mac) {
            return Err(err(
                &key,
                format!("{mac} is also `{server}`; name the server there, not under [devices]"),
            ));
        }
    }
    Ok(url)
}

fn check_topic(topic: &str) -> Result<(), String> {
    if topic.is_empty() {
        return Err("must not be empty".into());
    }
    if topic.contains(['+', '#', '\0']) {
        return Err(format!("`{topic}` contains an MQTT wildcard"));
    }
    if topic.starts_with('/') || topic.ends_with('/') {
        return Err(format!("`{topic}` must not start or end with `/`"));
    }
    if topic.contains("//") {
        return Err(format!("`{topic}` has an empty level (`//`)"));
    }
    // `$SYS/…` and other `$` topics belong to the broker; subscribers to `#` never see them.
    if topic.starts_with('$') {
        return Err(format!("`{topic}` starts with `$`, which is reserved for the broker"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_broker_urls() {
        let u = MqttUrl::parse("mqtt://127.0.0.1:1883").unwrap();
        assert_eq!(
            (u.transport, u.host.as_str(), u.port),
            (MqttTransport::Tcp, "127.0.0.1", 1883)
        );
        let u = MqttUrl::parse("mqtts://broker.lan").unwrap();
        assert_eq!((u.transport, u.port), (MqttTransport::Tls, 8883));
        let u = MqttUrl::parse("mqtt://[::1]:1884/").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 1884));
        assert_eq!(u.to_string(), "mqtt://[::1]:1884");
        for bad in [
            "127.0.0.1:1883",
            "http://x",
            "mqtt://",
            "mqtt://h:0",
            "mqtt://h:99999",
            "mqtt://u:p@h",
            "mqtt://h/x",
        ] {
            assert!(MqttUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
