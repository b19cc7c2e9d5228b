//! The bridge's own device and `bridge/info`: which sources they name, and what the MQTT link
//! refused or skipped. Both stay small whatever the number of sources (issue 21, finding 4).

use std::collections::BTreeMap;

use tokio::time::Instant;

use super::{Core, INFO_REFRESH, SOURCES_SHOWN, VERSION};
use crate::publish::state::{bridge_info, device_summary};
use crate::publish::{Priority, SourceStatus};

impl Core {
    /// What the link refused or skipped, for `bridge/info` (issue 21): the packet limit in
    /// force, the topics skipped as too large for it (the first few and how many), and what
    /// was refused on the way in. Empty while all is well.
    fn link_info(&self) -> serde_json::Value {
        let mut link = match &self.link_stats {
            Some(stats) => stats.to_json(),
            None => serde_json::json!({}),
        };
        if self.agents.refused() > 0 {
            link["agent_messages_refused"] = self.agents.refused().into();
        }
        let limit = self.outbox.packet_limit();
        if limit < self.config.settings.mqtt.max_packet_size {
            link["packet_limit_learnt"] = limit.into();
        }
        let refused = self.outbox.refused();
        if !refused.is_empty() {
            link["skipped_too_large"] = refused.len().into();
            link["skipped_topics"] = refused
                .iter()
                .take(5)
                .map(|(topic, size)| serde_json::json!({"topic": topic, "size": size}))
                .collect();
        }
        link
    }

    pub(super) fn put_bridge_info(&mut self) {
        self.load_agent_memory();
        let link = self.link_info();
        let join = self.join_info();
        let significant = self
            .statuses
            .iter()
            .map(|(name, s)| format!("{name}:{}:{}:{:?}", s.status, s.devices, s.last_error))
            .chain([link.to_string(), join.to_string()])
            .collect::<Vec<_>>()
            .join("|");
        let due = match &self.info_published {
            Some((last, at)) => *last != significant || at.elapsed() >= INFO_REFRESH,
            None => true,
        };
        if due {
            self.outbox.put(
                self.topics.bridge_info(),
                {
                    let mut info = if self.statuses.len() <= SOURCES_SHOWN {
                        bridge_info(VERSION, &self.statuses)
                    } else {
                        let shown: BTreeMap<String, SourceStatus> = self
                            .shown_sources()
                            .into_iter()
                            .filter_map(|n| self.statuses.get(&n).map(|s| (n, s.clone())))
                            .collect();
                        let mut info = bridge_info(VERSION, &shown);
                        info["sources_omitted"] = (self.statuses.len() - shown.len()).into();
                        info
                    };
                    if link.as_object().is_some_and(|l| !l.is_empty()) {
                        info["link"] = link;
                    }
                    info["permit_join"] = join;
                    info.to_string()
                },
                true,
                Priority::BridgeMeta,
            );
            self.info_published = Some((significant, Instant::now()));
        }
    }

    /// The sources the bridge's device and `bridge/info` name: all of them up to
    /// [`SOURCES_SHOWN`], else the failing ones first, then by name.
    fn shown_sources(&self) -> Vec<String> {
        if self.statuses.len() <= SOURCES_SHOWN {
            return self.statuses.keys().cloned().collect();
        }
        let (failing, fine): (Vec<_>, Vec<_>) = self
            .statuses
            .iter()
            .partition(|(_, s)| s.status == "error" || s.status == "offline");
        failing
            .into_iter()
            .chain(fine)
            .take(SOURCES_SHOWN)
            .map(|(n, _)| n.clone())
            .collect()
    }

    pub(super) fn render_bridge(&mut self) {
        let names: Vec<String> = self.statuses.keys().take(SOURCES_SHOWN).cloned().collect();
        let entities = self.context().bridge_entities(&names);
        self.put_discovery(entities);
        self.put_bridge_info();
        // Devices added or forgotten outside `handle`: take the whole list again.
        if self.household.devices().count() != self.devices_index.len() {
            let household = &self.household;
            self.renders.retain(|id| household.device(id).is_some());
            self.devices_index.replace_all(
                self.household
                    .devices()
                    .map(|d| (d.id.clone(), device_summary(d).to_string())),
            );
        }
        if let Some(messages) = self.devices_index.render(&self.topics, self.outbox.part_limit()) {
            for (topic, payload) in messages {
                self.outbox.put(topic, payload, true, Priority::BridgeMeta);
            }
        }
    }
}
