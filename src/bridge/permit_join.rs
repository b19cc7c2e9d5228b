//! The join window (issue 21, item 2), like zigbee2mqtt's `permit_join`: an agent that the
//! configuration does not name creates nothing, unless the user opened the window with
//! `<base>/bridge/request/permit_join` `{"time": seconds (1–254), "unsigned"?: bool}` and the
//! agent's first message arrives while it is open. `{"time": 0}` closes it; it also closes by
//! itself when the time is up. The rule for what the window admits:
//! - a message signed with this bridge's own `[agent] key` (the household's key, which the
//!   bridge's `bandwidth2mqtt agent` uses too): the agent is admitted *signed*, and from then on
//!   only messages signed with that key count, as for an `[agents.<name>] key`;
//! - an unsigned (or otherwise signed) message only if the window was opened with
//!   `"unsigned": true`: the agent is admitted *unsigned*, as trusted as an `[agents.<name>]`
//!   without a key. Opening without `unsigned` on a bridge with no `[agent] key` is refused
//!   (the window could admit nobody);
//! - only a well-formed online agent message admits; at most [`ADMITTED_MAX`] agents are ever
//!   admitted (named ones do not count), so a stranger who races the window cannot flood it.
//!
//! An admitted agent is written down in the agents file (agents.rs, `admitted`), so it stays
//! after a restart; it is an agent like a named one (no MACs, link speed as first reported),
//! listed in `bridge/info`, and forgotten with its server after `forget_after` unseen — its
//! admission too (it must be admitted again). Naming it in `[agents.<name>]` takes precedence.

use serde_json::{Map, Value, json};
use tokio::time::{Duration, Instant};

use super::Core;
use crate::config::AgentSettings;

/// zigbee2mqtt's limit for one window.
pub const PERMIT_JOIN_MAX_S: u64 = 254;
/// Agents admitted through windows, ever (until forgotten).
pub const ADMITTED_MAX: usize = 32;
/// Admitted agents named in `bridge/info` (the rest are counted).
const ADMITTED_SHOWN: usize = 20;

/// How an agent was admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Admission {
    Signed,
    Unsigned,
}

/// The open window: until when (tokio's clock and the bridge's ms), and whether it takes
/// unsigned agents.
#[derive(Debug, Clone, Copy)]
pub struct JoinWindow {
    until: Instant,
    until_ms: i64,
    unsigned: bool,
}

impl Core {
    /// `permit_join`: opens, re-opens or closes the window.
    pub(super) fn permit_join(&mut self, body: &Map<String, Value>) -> Result<Value, String> {
        let time = body
            .get("time")
            .and_then(Value::as_u64)
            .filter(|t| *t <= PERMIT_JOIN_MAX_S)
            .ok_or_else(|| format!("`time` must be a whole number of seconds from 0 to {PERMIT_JOIN_MAX_S}"))?;
        let unsigned = match body.get("unsigned") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err("`unsigned` must be true or false".into()),
        };
        if time == 0 {
            if self.join_window.take().is_some() {
                tracing::info!("Join window closed.");
            }
            self.render_bridge();
            return Ok(json!({"time": 0}));
        }
        if !unsigned && self.config.settings.agent.key.is_none() {
            return Err("this bridge has no [agent] key to check new agents with: set one (and give it to the agents), or open the window with \"unsigned\": true".into());
        }
        let until_ms = self
            .clock
            .now_ms()
            .saturating_add(i64::try_from(time * 1000).unwrap_or(i64::MAX));
        self.join_window = Some(JoinWindow {
            until: Instant::now() + Duration::from_secs(time),
            until_ms,
            unsigned,
        });
        tracing::info!(
            seconds = time,
            unsigned,
            "Join window open: new agents may be admitted."
        );
        self.render_bridge();
        Ok(json!({"time": time, "unsigned": unsigned, "until": until_text(until_ms)}))
    }

    /// Closes the window when its time is up (the agents tick calls this).
    pub(super) fn close_join_window_if_due(&mut self, now: Instant) {
        if self.join_window.is_some_and(|w| now >= w.until) {
            self.join_window = None;
            tracing::info!("Join window closed: its time is up.");
            self.render_bridge();
        }
    }

    /// The settings of an agent admitted through a window earlier, if `name` is one.
    pub(super) fn admitted_settings(&self, name: &str) -> Option<AgentSettings> {
        let admission = self.agents.admission(name)?;
        Some(self.admitted_as(admission))
    }

    fn admitted_as(&self, admission: Admission) -> AgentSettings {
        AgentSettings {
            key: match admission {
                Admission::Signed => self.config.settings.agent.key.clone(),
                Admission::Unsigned => None,
            },
            ..AgentSettings::default()
        }
    }

    /// An unnamed agent's message while the window is open: admitted (and written down) if it
    /// passes the rule in this file's header.
    pub(super) fn try_admit(&mut self, name: &str, payload: &[u8], now: Instant) -> Option<AgentSettings> {
        let window = self.join_window.filter(|w| now < w.until)?;
        if payload.is_empty() || self.agents.admitted_count() >= ADMITTED_MAX {
            return None;
        }
        let signed = self.admitted_as(Admission::Signed);
        let admission = if signed.key.is_some() && self.opens_as_online(name, &signed, payload) {
            Admission::Signed
        } else if window.unsigned && self.opens_as_online(name, &AgentSettings::default(), payload) {
            Admission::Unsigned
        } else {
            return None;
        };
        tracing::info!(agent = %name, admission = ?admission, "Agent admitted through the join window; written down in the agents file.");
        self.agents.admit(name, admission);
        self.save_agent_memory(true);
        Some(self.admitted_as(admission))
    }

    /// `bridge/info`'s `permit_join`: whether the window is open, until when, and the agents
    /// admitted through windows.
    pub(super) fn join_info(&self) -> Value {
        let mut info = match self.join_window {
            Some(w) => json!({"open": true, "until": until_text(w.until_ms), "unsigned": w.unsigned}),
            None => json!({"open": false}),
        };
        let admitted = self.agents.admitted_names();
        if !admitted.is_empty() {
            info["admitted"] = admitted.iter().take(ADMITTED_SHOWN).cloned().collect();
            if admitted.len() > ADMITTED_SHOWN {
                info["admitted_omitted"] = (admitted.len() - ADMITTED_SHOWN).into();
            }
        }
        info
    }
}

fn until_text(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}
