//! The bridge's side of `bandwidth2mqtt agent`: each agent named in `[agents.<name>]` that
//! publishes on `<base>/agent/<name>/counters` becomes a source named `agent_<name>`, ranked
//! like the host source (exact totals, live rates). It is online while its messages arrive; its
//! last will, a clean stop, an emptied retained message or three missed intervals make its
//! server offline. Its totals are held, never lowered; garbage is logged once and changes nothing.
//!
//! The broker is shared, not trusted (issue 21), so what an agent says is bounded:
//! - an agent the configuration does not name creates nothing (one log line per name, a count
//!   in `bridge/info`);
//! - with a key, only signed messages count, and an online one only with a sequence number
//!   above the last one taken (agent/signing.rs): forged and replayed messages count nothing;
//! - the interval between readings is measured on the bridge's clock when a message arrives,
//!   and each interface's link speed is capped by `max_bps` or what the agent first reported,
//!   so a message cannot claim a year or a terabit to pass the plausibility gate;
//! - only the MACs `[agents.<name>] mac` lists are kept: an agent never takes a router's client
//!   unless the configuration says so;
//! - an agent unseen for `forget_after` is forgotten with its server device (and its MACs),
//!   also one whose server was only restored from the state file: when each agent was last
//!   heard is kept in the agents file on the bridge's clock, so a restart does not restart it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
// Silence is judged on real time: an agent publishes on its own (real) interval.
use tokio::time::{Duration, Instant};

use super::permit_join::Admission;
use super::{Core, PollReport};
use crate::agent::AgentMessage;
use crate::agent::signing::{self, SignError};
use crate::config::AgentSettings;
use crate::model::DeviceId;
use crate::publish::{Priority, SourceStatus};
use crate::sources::SourceKind;

/// Sequence numbers and first-reported link speeds, kept across restarts.
const MEMORY_FILE: &str = "agents.json";
const SAVE_EVERY: Duration = Duration::from_secs(60);
/// Unknown agent names logged one by one; past this, one line says more are being refused.
const UNKNOWN_LOGGED: usize = 100;
/// Interfaces per agent whose first link speed is remembered.
const INTERFACES_MAX: usize = 64;
/// An agent's own interval is believed up to this (it sets when it counts as silent).
const INTERVAL_MAX_S: u64 = 3600;
/// Characters of an error kept for the log and `bridge/info`.
const ERROR_MAX: usize = 200;
/// The link speed of an interface the agent could not tell (no `speed` in sysfs).
const UNKNOWN_LINK_BPS: f64 = 100e9;

#[derive(Debug, Default)]
pub struct AgentBook {
    agents: BTreeMap<String, Seen>,
    /// Named agents whose garbage was already logged, with the text.
    warned: BTreeMap<String, String>,
    /// Unknown names already logged (at most [`UNKNOWN_LOGGED`]).
    unknown: BTreeSet<String>,
    unknown_overflow_logged: bool,
    /// Messages that counted nothing: unknown agent, unsigned, forged or replayed.
    refused: u64,
    /// Agents whose ignored MACs were logged.
    macs_logged: BTreeSet<String>,
    memory: BTreeMap<String, Memory>,
    /// Agents whose server was restored from the state file and who have not spoken since the
    /// start, with when they were last heard (ms, the bridge's clock).
    restored: BTreeMap<String, i64>,
    restored_found: bool,
    memory_loaded: bool,
    memory_dirty: bool,
    saved_at: Option<Instant>,
}

#[derive(Debug)]
struct Seen {
    last: Instant,
    /// The bridge's clock when the last reading was taken (each one a millisecond later at least).
    at_ms: i64,
    silent_after: Duration,
    online: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct Memory {
    /// The highest signed sequence number taken.
    seq: u64,
    /// The link speed each interface first reported (bit/s).
    max_bps: BTreeMap<String, f64>,
    /// When the agent's last message was taken (ms, the bridge's clock): drives forgetting
    /// across restarts.
    #[serde(skip_serializing_if = "Option::is_none")]
    seen_ms: Option<i64>,
    /// Admitted through the join window (permit_join.rs), not named in the configuration.
    #[serde(skip_serializing_if = "Option::is_none")]
    admitted: Option<Admission>,
}

pub fn source_name(agent: &str) -> String {
    format!("agent_{agent}")
}

impl AgentBook {
    /// How many agent messages counted nothing, for `bridge/info`.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// How `name` was admitted through the join window, if it was.
    pub(super) fn admission(&self, name: &str) -> Option<Admission> {
        self.memory.get(name).and_then(|m| m.admitted)
    }

    pub(super) fn admitted_names(&self) -> Vec<String> {
        self.memory
            .iter()
            .filter(|(_, m)| m.admitted.is_some())
            .map(|(n, _)| n.clone())
            .collect()
    }

    pub(super) fn admitted_count(&self) -> usize {
        self.memory.values().filter(|m| m.admitted.is_some()).count()
    }

    /// Writes the admission down (saved at once by the caller).
    pub(super) fn admit(&mut self, name: &str, admission: Admission) {
        self.memory.entry(name.to_owned()).or_default().admitted = Some(admission);
        self.memory_dirty = true;
    }
}

impl Core {
    pub(super) fn on_agent_message(&mut self, name: &str, payload: &[u8], now: Instant) {
        self.load_agent_memory();
        // Named in the configuration, else admitted through a join window (now or before).
        let named = self.config.settings.agents.get(name).cloned();
        let Some(settings) = named
            .or_else(|| self.admitted_settings(name))
            .or_else(|| self.try_admit(name, payload, now))
        else {
            return self.unknown_agent(name);
        };
        let source = source_name(name);
        if payload.is_empty() {
            // How a retained message is cleared: the agent is gone, not broken.
            if let Some(seen) = self.agents.agents.get_mut(name)
                && seen.online
            {
                seen.online = false;
                self.agent_offline(&source, "its retained message was cleared");
            }
            return;
        }
        let (text, seq) = match self.open_agent_payload(name, &settings, payload) {
            Ok(opened) => opened,
            Err(why) => {
                self.agents.refused += 1;
                return self.agent_garbage(name, &source, &why);
            }
        };
        let mut msg = match AgentMessage::parse(name, text.as_bytes()) {
            Ok(msg) => msg,
            Err(e) => {
                // The agent is alive, only its message is bad: it does not count as silent.
                if let Some(seen) = self.agents.agents.get_mut(name) {
                    seen.last = now;
                }
                return self.agent_garbage(name, &source, &e.to_string());
            }
        };
        if let Some(seq) = seq
            && msg.online
        {
            let last = self.agents.memory.get(name).map_or(0, |m| m.seq);
            if seq == last {
                // The same message again (a retained one on reconnect): nothing new.
                return;
            }
            if seq < last {
                self.agents.refused += 1;
                return self.agent_garbage(
                    name,
                    &source,
                    &format!("replayed message (sequence {seq}, already at {last}); counts nothing"),
                );
            }
            self.agents.memory.entry(name.to_owned()).or_default().seq = seq;
            self.agents.memory_dirty = true;
        }
        if self.agents.warned.remove(name).is_some() {
            tracing::info!(source = %source, "Agent publishes valid counters again.");
        }
        self.register_agent(&source);
        if !msg.online {
            self.agent_offline(&source, "the agent stopped or lost its connection (last will)");
            if let Some(seen) = self.agents.agents.get_mut(name) {
                seen.online = false;
            }
            return;
        }
        let previous_ms = self.agents.agents.get(name).map_or(i64::MIN, |s| s.at_ms);
        msg.at_ms = Some(self.clock.now_ms().max(previous_ms.saturating_add(1)));
        self.bound_agent_message(name, &settings, &mut msg);
        let Some(observation) = msg.to_observation() else {
            return;
        };
        let was_online = self.agents.agents.get(name).is_some_and(|s| s.online);
        self.agents.restored.remove(name);
        self.agents.memory.entry(name.to_owned()).or_default().seen_ms = msg.at_ms;
        self.agents.memory_dirty = true;
        self.agents.agents.insert(
            name.to_owned(),
            Seen {
                last: now,
                at_ms: msg.at_ms.unwrap_or_default(),
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
        self.save_agent_memory(false);
    }

    /// Whether `payload` is a well-formed online message of agent `name` under `settings`
    /// (what admits an agent through the join window).
    pub(super) fn opens_as_online(&self, name: &str, settings: &AgentSettings, payload: &[u8]) -> bool {
        self.open_agent_payload(name, settings, payload)
            .ok()
            .and_then(|(text, _)| AgentMessage::parse(name, text.as_bytes()).ok())
            .is_some_and(|m| m.online)
    }

    /// The agent message inside `payload`, checked against the agent's key; with a signature,
    /// its sequence number.
    fn open_agent_payload(
        &self,
        name: &str,
        settings: &AgentSettings,
        payload: &[u8],
    ) -> Result<(String, Option<u64>), String> {
        let envelope = signing::envelope(payload);
        match (&settings.key, envelope) {
            (Some(key), Some(envelope)) => {
                signing::verify(key.expose().as_bytes(), name, &envelope).map_err(|e| e.to_string())?;
                Ok((envelope.msg, Some(envelope.seq)))
            }
            (Some(_), None) => Err(SignError::Unsigned.to_string()),
            // Signed, but this bridge has no key for it: as trusted as an unsigned message.
            (None, Some(envelope)) => Ok((envelope.msg, None)),
            (None, None) => Ok((String::from_utf8_lossy(payload).into_owned(), None)),
        }
    }

    /// What the bridge believes of a message (its `at_ms` already the bridge's): its interval
    /// within reason, capped link speeds, allowed MACs.
    fn bound_agent_message(&mut self, name: &str, settings: &AgentSettings, msg: &mut AgentMessage) {
        msg.interval_s = msg.interval_s.map(|s| s.clamp(1, INTERVAL_MAX_S));
        let memory = self.agents.memory.entry(name.to_owned()).or_default();
        for (iface, reading) in &mut msg.interfaces {
            let reported = (reading.max_bps.is_finite() && reading.max_bps > 0.0).then_some(reading.max_bps);
            let first = match memory.max_bps.get(iface) {
                Some(first) => Some(*first),
                None if memory.max_bps.len() < INTERFACES_MAX => {
                    let first = reported.unwrap_or(UNKNOWN_LINK_BPS);
                    memory.max_bps.insert(iface.clone(), first);
                    self.agents.memory_dirty = true;
                    Some(first)
                }
                None => None,
            };
            let cap = settings.max_bps.or(first).unwrap_or(UNKNOWN_LINK_BPS);
            reading.max_bps = reported.unwrap_or(cap).min(cap);
        }
        let (kept, ignored): (Vec<_>, Vec<_>) = msg.macs.iter().partition(|m| settings.mac.iter().any(|a| a == *m));
        if !ignored.is_empty() && self.agents.macs_logged.insert(name.to_owned()) {
            tracing::info!(
                source = %source_name(name),
                ignored = ?ignored,
                "Agent reports MACs its [agents] table does not list; they tie nothing to this server (add them to `mac` if a router sees this server by them)."
            );
        }
        msg.macs = kept.into_iter().copied().collect();
    }

    /// One log line per unknown name (up to [`UNKNOWN_LOGGED`]); nothing else happens.
    fn unknown_agent(&mut self, name: &str) {
        self.agents.refused += 1;
        if self.agents.unknown.contains(name) {
            return;
        }
        if self.agents.unknown.len() < UNKNOWN_LOGGED {
            self.agents.unknown.insert(name.to_owned());
            tracing::warn!(agent = %name, "Message from an agent the configuration does not name; ignored (add [agents.{name}] to accept it).");
        } else if !self.agents.unknown_overflow_logged {
            self.agents.unknown_overflow_logged = true;
            tracing::warn!(
                "Messages from more than {UNKNOWN_LOGGED} unknown agents; ignoring them all without further log lines (see bridge/info)."
            );
        }
    }

    /// Agents that stopped talking without a will (hung, or the broker has not noticed yet),
    /// and agents unseen for `forget_after`, which are forgotten with their server.
    pub(super) fn check_silent_agents(&mut self, now: Instant) {
        self.close_join_window_if_due(now);
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
        let forget_after = self.config.settings.bridge.forget_after;
        if forget_after.is_zero() {
            return;
        }
        self.find_restored_agents();
        let now_ms = self.clock.now_ms();
        let limit = i64::try_from(forget_after.as_millis()).unwrap_or(i64::MAX);
        let gone: Vec<String> = self
            .agents
            .agents
            .iter()
            .filter(|(_, s)| now.duration_since(s.last) >= forget_after)
            .map(|(n, _)| n.clone())
            .chain(
                self.agents
                    .restored
                    .iter()
                    .filter(|(_, seen)| now_ms.saturating_sub(**seen) >= limit)
                    .map(|(n, _)| n.clone()),
            )
            .collect();
        for name in gone {
            self.forget_agent(&name);
        }
    }

    /// Once, at the first check: the agents whose server the state file brought back. One
    /// never heard of in the agents file (a file from before) starts its clock now, so nothing
    /// goes at the first start.
    fn find_restored_agents(&mut self) {
        if std::mem::replace(&mut self.agents.restored_found, true) {
            return;
        }
        self.load_agent_memory();
        let now_ms = self.clock.now_ms();
        // The configured agents, and those removed from the configuration that the agents
        // file remembers: a removed agent never speaks again (its messages are refused), so
        // its server goes `forget_after` after its last message, like any other.
        let names: BTreeSet<String> = self
            .config
            .settings
            .agents
            .keys()
            .chain(self.agents.memory.keys())
            .cloned()
            .collect();
        for name in names {
            let Ok(id) = DeviceId::new(&name) else {
                continue;
            };
            if self.agents.agents.contains_key(&name) || !self.household.ledger().known_ids().any(|k| *k == id) {
                continue;
            }
            let memory = self.agents.memory.entry(name.clone()).or_default();
            let seen = *memory.seen_ms.get_or_insert_with(|| {
                self.agents.memory_dirty = true;
                now_ms
            });
            self.agents.restored.insert(name, seen);
        }
        self.save_agent_memory(false);
    }

    /// An agent unseen for `forget_after`: its source, its server device and what it claimed go.
    fn forget_agent(&mut self, name: &str) {
        let source = source_name(name);
        tracing::info!(source = %source, "Agent unseen for forget_after; forgetting it and its server.");
        self.agents.agents.remove(name);
        self.agents.restored.remove(name);
        // An agent admitted through the join window must be admitted again.
        if let Some(memory) = self.agents.memory.get_mut(name)
            && memory.admitted.take().is_some()
        {
            self.agents.memory_dirty = true;
            self.save_agent_memory(true);
        }
        self.statuses.remove(&source);
        self.outbox
            .clear(self.topics.source_availability(&source), Priority::Availability);
        if let Ok(id) = DeviceId::new(name)
            && self.household.ledger().known_ids().any(|k| *k == id)
        {
            let event = self.drop_device(&id, self.clock.now_ms());
            self.messages.push((self.topics.bridge_event(), event.to_string()));
            self.save();
        }
        self.render_bridge();
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
    fn agent_garbage(&mut self, name: &str, source: &str, text: &str) {
        // Parts of the error come from the message: bounded for the log and `bridge/info`.
        let text: String = text.chars().take(ERROR_MAX).collect();
        let text = text.as_str();
        if self.agents.warned.get(name).map(String::as_str) != Some(text) {
            tracing::warn!(source = %source, error = %text, "Agent message ignored; its entities keep their last values.");
            self.agents.warned.insert(name.to_owned(), text.to_owned());
        }
        if let Some(status) = self.statuses.get_mut(source) {
            status.last_error = Some(text.to_owned());
            self.render_bridge();
        }
    }

    pub(super) fn load_agent_memory(&mut self) {
        if std::mem::replace(&mut self.agents.memory_loaded, true) {
            return;
        }
        let path = self.config.settings.bridge.state_dir.join(MEMORY_FILE);
        let Ok(text) = std::fs::read_to_string(&path) else {
            return;
        };
        match serde_json::from_str::<BTreeMap<String, Memory>>(&text) {
            // Agents removed from the configuration are kept: their servers are still to be
            // forgotten (find_restored_agents), and their sequence numbers still refuse a
            // replay should they be named again.
            Ok(memory) => self.agents.memory = memory,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "Unreadable agents file; sequence numbers start again from the agents' next messages.")
            }
        }
    }

    /// Writes the agents' memory at most once a minute, and at the end (`last`).
    pub(super) fn save_agent_memory(&mut self, last: bool) {
        if !self.persist || !self.agents.memory_dirty {
            return;
        }
        let now = Instant::now();
        if !last
            && self
                .agents
                .saved_at
                .is_some_and(|at| now.duration_since(at) < SAVE_EVERY)
        {
            return;
        }
        let dir = &self.config.settings.bridge.state_dir;
        let path = dir.join(MEMORY_FILE);
        let tmp = dir.join(format!("{MEMORY_FILE}.tmp"));
        let text = serde_json::to_string(&self.agents.memory).unwrap_or_default();
        match std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &path)) {
            Ok(()) => {
                self.agents.memory_dirty = false;
                self.agents.saved_at = Some(now);
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "Cannot save the agents file; trying again later.")
            }
        }
    }
}

#[cfg(test)]
#[path = "agents_tests.rs"]
mod tests;
