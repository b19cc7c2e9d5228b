//! The node_exporter source's spec and `[node_exporter.<name>]` tables: a server read through
//! the Prometheus node_exporter it already runs.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::NodeExporterSource;
use crate::model::DeviceId;
use crate::sources::{BuildContext, ServerMacs, SourceFolder, Spec};
use crate::table::{MacList, TableError, check_interval, check_source_name, duration};

pub struct Folder;

impl SourceFolder for Folder {
    const SPEC: Spec = Spec {
        kind: "node_exporter",
        // The kernel's exact counters of another machine, polled like the host's: the same
        // standing as the host and an agent (live rates beat vnstat's averages and the Deco's;
        // totals beat the routers' views, lose to vnstat's, which survive reboots).
        total_rank: 1,
        rate_rank: 0,
        // A server's own counters, exact: with the host, before the routers' views of it.
        first_round: 1,
        view_label: "node_exporter",
        estimates: false,
    };
    type Settings = BTreeMap<String, NodeExporterSettings>;
    type Source = NodeExporterSource;

    fn validate(tables: &Self::Settings) -> Result<(), TableError> {
        for (name, table) in tables {
            let key = |k: &str| format!("node_exporter.{name}.{k}");
            check_source_name(name).map_err(|m| (format!("node_exporter.{name}"), m))?;
            check_metrics_url(&table.url).map_err(|m| (key("url"), m))?;
            check_interval(table.interval, 1).map_err(|m| (key("interval"), m))?;
            check_interval(table.timeout, 1).map_err(|m| (key("timeout"), m))?;
            if table.interfaces.as_ref().is_some_and(Vec::is_empty) {
                return Err((
                    key("interfaces"),
                    "an empty list would monitor nothing; leave it out for the default".into(),
                ));
            }
        }
        Ok(())
    }

    fn names(tables: &Self::Settings) -> Vec<&str> {
        tables.keys().map(String::as_str).collect()
    }

    /// Like vnstat's: the configured MACs are the server's before any poll, so the routers'
    /// client entries for them join it from the first round.
    fn server_macs(tables: &Self::Settings) -> Vec<ServerMacs<'_>> {
        tables
            .iter()
            .map(|(name, t)| ServerMacs {
                key: format!("node_exporter.{name}.mac"),
                macs: &t.mac,
                claimed_by: Some(DeviceId::slugify_or_unnamed(name)),
            })
            .collect()
    }

    fn build(tables: &Self::Settings, _ctx: BuildContext<'_>) -> Vec<NodeExporterSource> {
        tables
            .iter()
            .map(|(name, cfg)| NodeExporterSource::new(name, cfg))
            .collect()
    }
}

/// The metrics page: `http(s)://host[:port]/path`, without credentials.
fn check_metrics_url(text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err("is required, e.g. \"http://192.168.1.10:9100/metrics\"".into());
    }
    let url = reqwest::Url::parse(text.trim())
        .map_err(|e| format!("`{text}` is not a URL ({e}); write it like http://192.168.1.10:9100/metrics"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{text}`: use http:// or https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{text}` has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials in the URL are not supported".into());
    }
    if url.path() == "/" {
        return Err(format!(
            "`{text}` has no path; node_exporter serves its metrics at /metrics (http://host:9100/metrics)"
        ));
    }
    Ok(())
}

/// `[node_exporter.<name>]`: one server running Prometheus' node_exporter.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeExporterSettings {
    /// The metrics page, e.g. `http://192.168.1.10:9100/metrics`.
    pub url: String,
    #[serde(with = "duration")]
    pub interval: Duration,
    /// Per request.
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// Display name; defaults to the table key.
    pub name: Option<String>,
    /// One MAC or a list: what routers see of this server (each NIC, Wi-Fi and cable).
    pub mac: MacList,
    /// Interfaces to publish; default: every interface the exporter reports except loopback
    /// and virtual ones (docker, veth, bridges, ifb, tap).
    pub interfaces: Option<Vec<String>>,
}

impl Default for NodeExporterSettings {
    fn default() -> Self {
        Self {
            url: String::new(),
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
            name: None,
            mac: MacList::default(),
            interfaces: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::config::{ConfigSource, load_from};

    /// The message `check-config` gives for `toml`, or `None` when it is valid.
    fn check(toml: &str) -> Option<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, format!("[host]\nenabled = false\n{toml}")).unwrap();
        load_from(ConfigSource::File(path), BTreeMap::new())
            .err()
            .map(|e| e.to_string())
    }

    /// `BANDWIDTH2MQTT__NODE_EXPORTER__<NAME>__<KEY>` reaches the table (the `_` in the
    /// table's own name is not a separator).
    #[test]
    fn environment_overrides_reach_the_table() {
        let env: BTreeMap<String, String> = [
            ("BANDWIDTH2MQTT__HOST__ENABLED", "false"),
            ("BANDWIDTH2MQTT__NODE_EXPORTER__PANDA__URL", "http://10.0.0.2:9100/metrics"),
            ("BANDWIDTH2MQTT__NODE_EXPORTER__PANDA__INTERFACES", "eth0, wlan0"),
            ("BANDWIDTH2MQTT__NODE_EXPORTER__PANDA__INTERVAL", "2m"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let loaded = load_from(ConfigSource::Defaults, env).unwrap();
        let panda = &loaded.settings.node_exporter["panda"];
        assert_eq!(panda.url, "http://10.0.0.2:9100/metrics");
        assert_eq!(panda.interfaces.as_deref(), Some(&["eth0".to_owned(), "wlan0".to_owned()][..]));
        assert_eq!(panda.interval, std::time::Duration::from_secs(120));
    }

    #[test]
    fn the_table_is_checked_like_the_other_servers() {
        let ok = "[node_exporter.panda]\nurl = \"http://10.0.0.2:9100/metrics\"\n";
        assert_eq!(check(ok), None);
        for (toml, key, words) in [
            ("[node_exporter.panda]\n", "node_exporter.panda.url", "is required"),
            (
                "[node_exporter.panda]\nurl = \"http://10.0.0.2:9100\"\n",
                "node_exporter.panda.url",
                "/metrics",
            ),
            (
                "[node_exporter.panda]\nurl = \"ftp://10.0.0.2/metrics\"\n",
                "node_exporter.panda.url",
                "use http:// or https://",
            ),
            (
                "[node_exporter.panda]\nurl = \"http://u:p@10.0.0.2/metrics\"\n",
                "node_exporter.panda.url",
                "credentials",
            ),
            (
                "[node_exporter.Panda]\nurl = \"http://h/metrics\"\n",
                "node_exporter.Panda",
                "not a valid name",
            ),
            (
                "[node_exporter.panda]\nurl = \"http://h/metrics\"\ninterval = \"0s\"\n",
                "node_exporter.panda.interval",
                "at least 1s",
            ),
            (
                "[node_exporter.panda]\nurl = \"http://h/metrics\"\ninterfaces = []\n",
                "node_exporter.panda.interfaces",
                "monitor nothing",
            ),
            (
                "[node_exporter.panda]\nurl = \"http://h/metrics\"\nport = 1\n",
                "node_exporter.panda",
                "unknown field `port`",
            ),
            (
                "[vnstat.panda]\n[node_exporter.panda]\nurl = \"http://h/metrics\"\n",
                "node_exporter.panda",
                "already used by [vnstat.panda]",
            ),
            (
                "[node_exporter.agent_x]\nurl = \"http://h/metrics\"\n",
                "node_exporter.agent_x",
                "sources of agents",
            ),
            (
                "[vnstat.titan]\nmac = \"02:00:00:00:00:01\"\n[node_exporter.panda]\nurl = \"http://h/metrics\"\nmac = \"02:00:00:00:00:01\"\n",
                "node_exporter.panda.mac",
                "already the MAC of `vnstat.titan.mac`",
            ),
        ] {
            let message = check(toml).unwrap_or_else(|| panic!("accepted: {toml}"));
            assert!(message.contains(&format!("key `{key}")), "{message}");
            assert!(message.contains(words), "{message}");
        }
    }
}
