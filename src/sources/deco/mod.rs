//! A TP-Link Deco mesh through the main unit's local web API (shared/protocols/deco.md).
//!
//! Each poll reads the whole mesh's client list (rates and online state) and the master's
//! CPU/memory: two requests. What changes slowly is read every [`SLOW_EVERY`] polls: the node
//! list, the WAN, and each node's own client list (which node a client is on); a node's list is
//! also read as soon as a client shows up whose node is unknown. That is ≤ 4 requests per poll on
//! average (tplinkrouterc6u makes 4), where it used to be 6.
//! The Deco gives rates only; accounting integrates them into estimated totals.

pub mod clientlist;
pub mod crypto;
mod envelope;
pub mod etiquette;
pub mod names;
pub mod observe;
pub mod parse;
pub mod protocol;
pub mod session;
mod spec;

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::Duration;

use serde_json::{Value, json};

use self::clientlist::ClientListReply;
use self::observe::{Observer, Snapshot};
use self::parse::ParseError;
use self::protocol::Endpoint;
use self::session::{DecoClient, DecoError};
use super::{Source, SourceError, SourceKind};
use crate::table::Secret;
pub use spec::{DecoSettings, Folder, SpeedUnit};
use crate::http::{TlsPolicy, build_client};
use crate::model::{MacAddr, Observation};

/// Slow-changing forms (node list, WAN, per-node client lists) are read every this many polls.
pub const SLOW_EVERY: u64 = 10;

pub struct DecoSource {
    name: String,
    cfg: DecoSettings,
    /// `Err` if the HTTP client could not be built; every poll then reports why.
    client: Result<DecoClient, String>,
    observer: Observer,
    /// Stamps observations; injectable so a simulated day runs in seconds.
    clock: crate::clock::Clock,
    /// Optional forms this firmware does not have (HTTP 404 / error_code 1): not asked again.
    absent: BTreeSet<&'static str>,
    mode: Option<String>,
    checked_host: bool,
    /// Polls that read the client list, and the slow forms' last answers.
    polls: u64,
    nodes: Option<Vec<parse::NodeEntry>>,
    wan: Option<parse::Wan>,
    /// Clients listed when the per-node lists were last read: a client not among them is new.
    asked_for: BTreeSet<MacAddr>,
}

impl DecoSource {
    pub fn new(name: &str, cfg: &DecoSettings) -> Self {
        Self::with_clock(name, cfg, crate::clock::Clock::system())
    }

    /// Remembers refusals and logins spent across restarts (see `login_journal`).
    pub fn remember_logins(&mut self, journal: crate::sources::login_memory::LoginJournal) {
        if let Ok(client) = self.client.as_mut()
            && let Some(reason) = client.attach_journal(journal)
        {
            tracing::warn!(source = %self.name, reason = %reason, "Still holding back logins after a restart: the Deco refused this password before.");
        }
    }

    pub fn with_clock(name: &str, cfg: &DecoSettings, clock: crate::clock::Clock) -> Self {
        let policy = match &cfg.tls_fingerprint {
            Some(fp) => TlsPolicy::pinned(fp),
            None if cfg.verify_tls => Ok(TlsPolicy::Verify),
            None => Ok(TlsPolicy::Insecure),
        };
        let client = policy
            .and_then(|p| build_client(&p, cfg.timeout))
            .map(|http| {
                DecoClient::new(
                    name,
                    http,
                    &cfg.url,
                    cfg.password.clone().unwrap_or_else(|| Secret::new("")),
                    cfg.timeout,
                )
            })
            .map_err(|e| e.to_string());
        Self {
            name: name.to_owned(),
            observer: Observer::new(name, cfg.speed_unit, cfg.interval),
            cfg: cfg.clone(),
            client,
            clock,
            absent: BTreeSet::new(),
            mode: None,
            checked_host: false,
            polls: 0,
            nodes: None,
            wan: None,
            asked_for: BTreeSet::new(),
        }
    }

    /// Login attempts this source has made (successful or not).
    pub fn login_attempts(&self) -> u64 {
        self.client.as_ref().map_or(0, DecoClient::login_attempts)
    }

    /// Reads everything one poll needs.
    pub async fn snapshot(&mut self) -> Result<Snapshot, SourceError> {
        let client = self.client.as_mut().map_err(|e| SourceError::Unavailable(e.clone()))?;
        let read = json!({"operation": "read"});

        let slow_due = self.polls.is_multiple_of(SLOW_EVERY) || self.nodes.is_none();
        let nodes = match (&self.nodes, slow_due) {
            (Some(nodes), false) => nodes.clone(),
            _ => {
                let devices = client.read(Endpoint::DEVICE_LIST, &read).await.map_err(source_error)?;
                let nodes = parse::device_list(&devices).map_err(|e| invalid(Endpoint::DEVICE_LIST, e))?;
                self.nodes = Some(nodes.clone());
                nodes
            }
        };

        let all = json!({"operation": "read", "params": {"device_mac": "default"}});
        let list: ClientListReply = client
            .read_as(Endpoint::CLIENT_LIST, &all)
            .await
            .map_err(source_error)?;
        let at_ms = self.clock.now_ms();
        let clients = list.clients.map_err(|e| invalid(Endpoint::CLIENT_LIST, e))?;
        self.polls += 1;

        // Which node each client is on; a node whose list fails or is not due keeps its
        // clients' last known node (a per-node query can time out while `default` works,
        // HA #482). A client whose node is unknown makes the lists due now.
        let newcomer = clients
            .iter()
            .filter(|c| c.online)
            .filter_map(|c| c.mac)
            .any(|mac| !self.asked_for.contains(&mac) && !self.observer.knows_node_of(&mac));
        let mut per_node = BTreeMap::new();
        if nodes.len() > 1 && !(slow_due || newcomer) {
            for mac in nodes.iter().filter_map(|n| n.mac) {
                per_node.insert(mac, None);
            }
        } else if nodes.len() > 1 {
            self.asked_for = clients.iter().filter_map(|c| c.mac).collect();
            let client = self.client.as_mut().map_err(|e| SourceError::Unavailable(e.clone()))?;
            for node in nodes.iter().filter(|n| n.mac.is_some()) {
                let request = json!({"operation": "read", "params": {"device_mac": dash_mac(&node.raw_mac)}});
                let macs = match client.read_as::<ClientListReply>(Endpoint::CLIENT_LIST, &request).await {
                    Ok(list) => Some(
                        list.clients
                            .map_err(|e| invalid(Endpoint::CLIENT_LIST, e))?
                            .into_iter()
                            .filter_map(|c| c.mac)
                            .collect(),
                    ),
                    Err(e) if is_transient(&e) => {
                        tracing::debug!(source = %self.name, node = %node.raw_mac, error = %e, "Per-node client list failed; keeping its clients' last known node.");
                        None
                    }
                    Err(e) => return Err(source_error(e)),
                };
                if let Some(mac) = node.mac {
                    per_node.insert(mac, macs);
                }
            }
        }

        let performance = self
            .optional(Endpoint::PERFORMANCE, &read)
            .await?
            .map(|r| parse::performance(&r));
        let wan = if slow_due || self.wan.is_none() {
            let wan = self
                .optional(Endpoint::WAN_IPV4, &read)
                .await?
                .map(|r| parse::wan_ipv4(&r));
            self.wan = wan.clone();
            wan
        } else {
            self.wan.clone()
        };
        if self.mode.is_none() {
            self.mode = self
                .optional(Endpoint::MODE, &read)
                .await?
                .and_then(|r| parse::mode(&r));
        }

        let snap = Snapshot {
            at_ms,
            nodes,
            clients,
            per_node,
            performance,
            wan,
            mode: self.mode.clone(),
        };
        self.check_host(&snap);
        Ok(snap)
    }

    /// A form some firmware lacks: absent or failing, the poll goes on without it; garbage
    /// or a lost login still fail the poll.
    async fn optional(&mut self, endpoint: Endpoint, request: &Value) -> Result<Option<Value>, SourceError> {
        if self.absent.contains(endpoint.form) {
            return Ok(None);
        }
        let client = self.client.as_mut().map_err(|e| SourceError::Unavailable(e.clone()))?;
        match client.read(endpoint, request).await {
            Ok(result) => Ok(Some(result)),
            Err(DecoError::Unsupported { why, .. }) => {
                tracing::info!(source = %self.name, endpoint = %endpoint, why = %why, "This Deco firmware does not have this form; not asking again.");
                self.absent.insert(endpoint.form);
                Ok(None)
            }
            Err(e) if is_transient(&e) => {
                tracing::debug!(source = %self.name, endpoint = %endpoint, error = %e, "Optional Deco form failed this poll.");
                Ok(None)
            }
            Err(e) => Err(source_error(e)),
        }
    }

    /// The bridge must talk to the main Deco: a satellite's address gives no clients.
    fn check_host(&mut self, snap: &Snapshot) {
        if self.checked_host {
            return;
        }
        self.checked_host = true;
        let configured = reqwest::Url::parse(&self.cfg.url)
            .ok()
            .and_then(|u| u.host_str().and_then(|h| h.parse::<Ipv4Addr>().ok()));
        let master_ip = snap.nodes.iter().find(|n| n.master).and_then(|n| n.ip);
        if let (Some(configured), Some(master)) = (configured, master_ip)
            && configured != master
            && !configured.is_loopback()
        {
            tracing::warn!(source = %self.name, configured = %configured, main_deco = %master, "The configured URL is not the main Deco's address; point it at the main unit, or clients may be missing.");
        }
    }
}

impl Source for DecoSource {
    fn set_clock(&mut self, clock: &crate::clock::Clock) {
        self.clock = clock.clone();
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> SourceKind {
        SourceKind::Deco
    }

    fn interval(&self) -> Duration {
        self.cfg.interval
    }

    async fn poll(&mut self) -> Result<Vec<Observation>, SourceError> {
        match self.snapshot().await {
            Ok(snap) => Ok(self.observer.observe(&snap)),
            Err(e) => {
                self.observer.poll_failed();
                Err(e)
            }
        }
    }

    async fn close(&mut self) {
        if let Ok(client) = self.client.as_mut() {
            client.logout().await;
        }
    }
}

/// Failures that say nothing about the data: try again next poll.
fn is_transient(e: &DecoError) -> bool {
    matches!(
        e,
        DecoError::Unreachable { .. } | DecoError::Http { .. } | DecoError::Refused { .. }
    )
}

fn source_error(e: DecoError) -> SourceError {
    match &e {
        DecoError::Held(hold) if hold.credentials => SourceError::Auth(e.to_string()),
        DecoError::Invalid { .. } | DecoError::TooLarge { .. } | DecoError::Unsupported { .. } => {
            SourceError::Invalid(e.to_string())
        }
        _ => SourceError::Unavailable(e.to_string()),
    }
}

fn invalid(endpoint: Endpoint, e: ParseError) -> SourceError {
    SourceError::Invalid(format!("{endpoint}: {e}"))
}

/// Per-node queries name the node as the Deco spells it in `device_list`, dash upper-case.
fn dash_mac(raw: &str) -> String {
    match raw.parse::<MacAddr>() {
        Ok(mac) => mac.to_string().replace(':', "-").to_ascii_uppercase(),
        Err(_) => raw.to_owned(),
    }
}
