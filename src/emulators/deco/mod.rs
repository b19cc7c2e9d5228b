//! A TP-Link Deco mesh that speaks the LuCI protocol of shared/protocols/deco.md: the
//! handshake and crypto, the endpoints the bridge and tplinkrouterc6u use, two mesh nodes,
//! clients with bursty traffic and exact ground truth, and the faults real Decos show.
//!
//! Library code: the tests, the accuracy benchmark and `demo` all drive it the same way.

mod auth;
mod clock;
mod handler;
pub mod keys;
mod mesh;
mod traffic;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub use auth::LOCKOUT_AFTER;
pub use clock::Clock;
pub use mesh::{ClientSpec, MacStyle, NodeSpec, OfflineListing, Presence, WanSpec, b64, home};
pub use traffic::Profile;

use crate::config::SpeedUnit;
use crate::model::MacAddr;

/// What the emulated mesh looks like.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// The owner password.
    pub password: String,
    /// The first node is the master.
    pub nodes: Vec<NodeSpec>,
    pub clients: Vec<ClientSpec>,
    pub wan: WanSpec,
    /// The unit of `down_speed`/`up_speed` this firmware uses.
    pub speed_unit: SpeedUnit,
    /// Reported speeds are the average over this window before the read.
    pub rate_window: Duration,
    pub seed: u64,
    /// How node MACs are spelled in `device_list`.
    pub mac_style: MacStyle,
    pub clock: Clock,
    /// Access-point mode (the seed's option A): the upstream router does DHCP and NAT and
    /// lists the same clients; the Deco's WAN block is empty and its mode says so (deco.md §7).
    pub access_point: bool,
}

impl EmulatorConfig {
    /// The [`home`] mesh on the given clock.
    pub fn home(password: &str, clock: Clock) -> Self {
        let (nodes, clients) = home();
        Self::new(password, nodes, clients, clock)
    }

    pub fn new(password: &str, nodes: Vec<NodeSpec>, clients: Vec<ClientSpec>, clock: Clock) -> Self {
        Self {
            password: password.to_owned(),
            nodes,
            clients,
            wan: WanSpec {
                mac: MacAddr::new([0xf0, 0x09, 0x0d, 0xfa, 0x29, 0x7d]),
                ip: "192.168.1.11".into(),
                gateway: "192.168.1.1".into(),
                lan_mac: MacAddr::new([0xf0, 0x09, 0x0d, 0xfa, 0x29, 0x7c]),
                lan_ip: "192.168.68.1".into(),
            },
            speed_unit: SpeedUnit::KbitPerS,
            rate_window: Duration::from_secs(2),
            seed: 1,
            mac_style: MacStyle::UpperDash,
            clock,
            access_point: false,
        }
    }
}

/// How the Deco tells a client its session is gone (both are seen, deco.md §4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SessionGone {
    #[default]
    Forbidden,
    EmptyData,
}

/// Broken answers to every admin call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Garbage {
    /// An HTML error page instead of JSON.
    Html,
    /// `data` that is not base64.
    BadBase64,
    /// `data` encrypted with another key.
    WrongKey,
    /// `data` that decrypts to something that is not JSON.
    NotJsonInside,
    /// Valid JSON of the wrong shape (`client_list` is not a list).
    WrongShape,
}

/// Faults to inject; change them at any time with [`DecoEmulator::set_faults`].
#[derive(Debug, Clone, Default)]
pub struct Faults {
    pub session_gone: SessionGone,
    /// The owner is using the app: every session of ours is taken at once.
    pub owner_active: bool,
    pub garbage: Option<Garbage>,
    /// `client_list` answers only after this long.
    pub client_list_delay: Option<Duration>,
    pub client_list_http_500: bool,
    /// `client_list` answers `error_code: "timeout"`.
    pub client_list_timeout_code: bool,
    /// Per-node `client_list` queries answer `error_code: "timeout"`; `default` works.
    pub per_node_timeout: bool,
    /// Firmware that reports 0 for every speed (BE65 fw 1.3).
    pub zero_speeds: bool,
    /// `login?form=login` answers only after this long (X55 fw 1.8 hung for weeks).
    pub login_delay: Option<Duration>,
}

/// Counters a test can assert on.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub keys: u64,
    pub auth: u64,
    pub login_attempts: u64,
    pub logins_ok: u64,
    pub wrong_passwords: u64,
    pub locked_answers: u64,
    /// The highest failed-login count ever reached (10 = locked out).
    pub max_failures: u32,
    pub logouts: u64,
    /// Admin calls refused for a stale or missing session.
    pub sessions_rejected: u64,
    pub bad_signs: u64,
    pub signs_with_key: u64,
    pub signs_without_key: u64,
    /// Admin calls by `path?form=`.
    pub calls: BTreeMap<String, u64>,
}

/// One request as received, for cross-checks against real clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub method: String,
    /// Path and query, with the stok replaced by `<stok>`.
    pub target: String,
    pub content_type: Option<String>,
    pub body_len: usize,
    /// Hex digits of the `sign` field, when there is one.
    pub sign_len: Option<usize>,
    pub cookie: bool,
    /// The decrypted (or plain) `operation`.
    pub operation: Option<String>,
    pub status: u16,
}

/// Requests kept for [`DecoEmulator::requests`]; older ones are dropped (a demo runs for days).
const REQUESTS_KEPT: usize = 1000;

struct State {
    auth: auth::Auth,
    clients: Vec<mesh::Client>,
    faults: Faults,
    stats: Stats,
    requests: VecDeque<RequestRecord>,
}

impl State {
    fn record(&mut self, request: RequestRecord) {
        if self.requests.len() >= REQUESTS_KEPT {
            self.requests.pop_front();
        }
        self.requests.push_back(request);
    }
}

struct Inner {
    config: EmulatorConfig,
    state: Mutex<State>,
}

#[derive(Debug, thiserror::Error)]
#[error("the emulator's RSA keys do not load: {0}")]
pub struct EmulatorError(String);

/// A Deco mesh. Cheap to clone: clones share one mesh.
#[derive(Clone)]
pub struct DecoEmulator {
    inner: Arc<Inner>,
}

impl DecoEmulator {
    pub fn new(config: EmulatorConfig) -> Result<Self, EmulatorError> {
        let auth = auth::Auth::new(&config.password).map_err(|e| EmulatorError(e.to_string()))?;
        // The mesh has been up for a while: the rate window is already full at the first read.
        let warm_up = i64::try_from(config.rate_window.as_millis()).unwrap_or(0) + 1000;
        let start = config.clock.now_ms() - warm_up;
        let clients = config
            .clients
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let seed = config.seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
                mesh::Client::new(spec.clone(), seed, config.rate_window, start)
            })
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                state: Mutex::new(State {
                    auth,
                    clients,
                    faults: Faults::default(),
                    stats: Stats::default(),
                    requests: VecDeque::new(),
                }),
            }),
        })
    }

    /// The HTTP API as an axum router; serve it with [`crate::emulators::serve`].
    pub fn router(&self) -> axum::Router {
        axum::Router::new().fallback(handler::handle).with_state(self.clone())
    }

    /// Serves the API on 127.0.0.1:`port` (0 = any free port).
    pub async fn serve(&self, port: u16, tls: bool) -> std::io::Result<super::Server> {
        super::serve(self.router(), port, tls).await
    }

    pub fn clock(&self) -> &Clock {
        &self.inner.config.clock
    }

    pub fn config(&self) -> &EmulatorConfig {
        &self.inner.config
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panicking handler cannot leave the mesh half-updated in a way that matters here.
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn faults(&self) -> Faults {
        self.state().faults.clone()
    }

    pub fn set_faults(&self, faults: Faults) {
        self.state().faults = faults;
    }

    /// The owner logged in elsewhere (app, web UI): our session is gone.
    pub fn kick_session(&self) {
        self.state().auth.session = None;
    }

    /// Changes the owner password (the bridge's becomes wrong).
    pub fn set_password(&self, password: &str) {
        self.state().auth.password = password.to_owned();
    }

    /// A reboot: sessions end and the login lockout clears.
    pub fn reboot(&self) {
        let mut state = self.state();
        state.auth.session = None;
        state.auth.failures = 0;
    }

    pub fn has_session(&self) -> bool {
        self.state().auth.session.is_some()
    }

    /// The current session's `stok` and `sysauth`, so tests can check they never leak.
    pub fn session_tokens(&self) -> Option<(String, String)> {
        self.state()
            .auth
            .session
            .as_ref()
            .map(|s| (s.stok.clone(), s.cookie.clone()))
    }

    pub fn stats(&self) -> Stats {
        self.state().stats.clone()
    }

    /// The latest requests (up to 1000), oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state().requests.iter().cloned().collect()
    }

    /// Forces a client on or off the network (`None`: back to its schedule).
    pub fn set_client_online(&self, mac: MacAddr, online: Option<bool>) {
        let now = self.clock().now_ms();
        let mut state = self.state();
        for client in state.clients.iter_mut().filter(|c| c.spec.mac == mac) {
            client.advance(now);
            client.forced_online = online;
        }
    }

    /// Bytes each client really received and sent since the emulator started, up to now.
    pub fn ground_truth(&self) -> BTreeMap<MacAddr, (u64, u64)> {
        let now = self.clock().now_ms();
        let mut state = self.state();
        for client in &mut state.clients {
            client.advance(now);
        }
        mesh::truths(&state.clients)
    }
}

#[cfg(test)]
#[path = "emulator_tests.rs"]
mod tests;
