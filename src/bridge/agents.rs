//! The bridge's side of `bandwidth2mqtt agent`: each agent that publishes on
//! `<base>/agent/<name>/counters` becomes a source named `agent_<name>`, ranked like the host
//! source (exact totals, live rates). It is online while its messages arrive; its last will, a
//! clean stop or three missed intervals make its server offline. Its totals are held, never
//! lowered; garbage is logged once and changes nothing.

use std::collections::BTreeMap;

// Silence is judged on real time: an agent publishes on its own (real) interval.
use tokio::time::{Duration, Instant};

use super::{Core, PollReport};
use crate::agent::{AgentMessage, PayloadError};
use crate::publish::{Priority, SourceStatus};
use crate::sources::SourceKind;

#[derive(Debug, Default)]
pub struct AgentBook {
    agents: BTreeMap<String, Seen>,
    /// Topic names whose garbage was already logged (also for names that are not valid ids).
    warned: BTreeMap<String, String>,
}

#[derive(Debug)]
struct Seen {
    last: Instant,
    silent_after: Duration,
    online: bool,
}

pub fn source_name(agent: &str) -> String {
    format!("agent_{agent}")
}

impl Core {
    pub(super) fn on_agent_message(&mut self, name: &str, payload: &[u8], now: Instant) {
        let source = source_name(name);
        let msg = match AgentMessage::parse(name, payload) {
            Ok(msg) => msg,
            Err(e) => {
                // The agent is alive, only its message is bad: it does not count as silent.
                if let Some(seen) = self.agents.agents.get_mut(name) {
                    seen.last = now;
                }
                return self.agent_garbage(name, &source, &e);
            }
        };
        if self.agents.warned.remove(name).is_some() {
            tracing::info!(source = %source, "Agent publishes valid counters again.");
        }
        self.register_agent(&source);
        let Some(observation) = msg.to_observation() else {
            return;
        };
        if !msg.online {
            self.agent_offline(&source, "the agent stopped or lost its connection (last will)");
            if let Some(seen) = self.agents.agents.get_mut(name) {
                seen.online = false;
            }
            return;
        }
        let was_online = self.agents.agents.get(name).is_some_and(|s| s.online);
        self.agents.agents.insert(
            name.to_owned(),
            Seen {
                last: now,
                silent_after: msg.silent_after(),
                online: true,
            },
        );
        if !was_online {
            tracing::info!(source = %source, boot_id = msg.boot_id.as_deref().unwrap_or("-"), "Agent online.");
        }
        let mut details = serde_json::Map::new();
        details.insert("boot_id".into(), msg.boot_id.clone().into());
        details.insert("interval_s".into(), msg.interval_s.into());
        self.handle_report(PollReport {
            source,
            result: Ok(vec![observation]),
            at_ms: self.clock.now_ms(),
            cursor: None,
            details,
            duration: Duration::ZERO,
        });
    }

    /// Agents that stopped talking without a will (hung, or the broker has not noticed yet).
    pub(super) fn check_silent_agents(&mut self, now: Instant) {
        let silent: Vec<(String, Duration)> = self
            .agents
            .agents
            .iter()
            .filter(|(_, s)| s.online && now.duration_since(s.last) > s.silent_after)
            .map(|(n, s)| (n.clone(), now.duration_since(s.last)))
            .collect();
        for (name, quiet) in silent {
            if let Some(seen) = self.agents.agents.get_mut(&name) {
                seen.online = false;
            }
            self.agent_offline(&source_name(&name), &format!("no counters for {} s", quiet.as_secs()));
        }
    }

    fn register_agent(&mut self, source: &str) {
        if self.statuses.contains_key(source) {
            return;
        }
        self.household
            .add_feed(SourceKind::Agent.feed(source), SourceKind::Agent.as_str());
        self.statuses.insert(
            source.to_owned(),
            SourceStatus {
                kind: SourceKind::Agent.as_str(),
                status: "pending",
                ..SourceStatus::default()
            },
        );
    }

    /// The server is offline; its totals stay where they are. The source itself stays
    /// available: "offline" is what the agent told us, not a failure to read it.
    fn agent_offline(&mut self, source: &str, why: &str) {
        tracing::warn!(source = %source, reason = %why, "Agent offline; its server is offline and its totals are held.");
        if let Some(status) = self.statuses.get_mut(source) {
            status.status = "offline";
            status.last_error = Some(why.to_owned());
        }
        self.outbox.put(
            self.topics.source_availability(source),
            "online",
            true,
            Priority::Availability,
        );
        for id in self.household.source_failed(source) {
            self.render_device(&id);
        }
        self.render_bridge();
    }

    /// One log line per distinct problem; nothing in the ledger changes.
    fn agent_garbage(&mut self, name: &str, source: &str, error: &PayloadError) {
        let text = error.to_string();
        if self.agents.warned.get(name) != Some(&text) {
            tracing::warn!(source = %source, error = %text, "Agent message ignored; its entities keep their last values.");
            self.agents.warned.insert(name.to_owned(), text.clone());
        }
        if let Some(status) = self.statuses.get_mut(source) {
            status.last_error = Some(text);
            self.render_bridge();
        }
    }
}
