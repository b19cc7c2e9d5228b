//! An emulated ASUS router (stock firmware web API, shared/protocols/asus.md §8): login with
//! lockout, sessions, `appGet.cgi` hooks with their quirks, the client list, temperatures, and
//! the pages the asusrouter client probes; faults and reboots on demand.

mod render;
mod routes;
mod state;
mod traffic;

use std::sync::{Arc, Mutex};

pub use render::app_get;
pub use routes::form_fields;
pub use state::{AsusConfig, EmuClient, Fault, LiveFaults, OddTable, RouterState, Stats, TaFault};
pub use traffic::{APPS, RouterClock, Stamping, TrafficDb};

use super::{Server, TlsIdentity, serve_with};

pub struct AsusEmulator {
    state: routes::Shared,
    server: Mutex<Option<Server>>,
    port: u16,
    tls: Option<TlsIdentity>,
}

impl AsusEmulator {
    /// Starts serving on a free port of 127.0.0.1 (HTTPS with a self-signed certificate if `tls`).
    pub async fn start(config: AsusConfig, tls: bool) -> std::io::Result<Self> {
        let identity = if tls { Some(TlsIdentity::self_signed()?) } else { None };
        let state = Arc::new(Mutex::new(RouterState::new(config)));
        let server = serve_with(router(state.clone()), 0, identity.clone()).await?;
        Ok(Self {
            port: server.addr.port(),
            state,
            server: Mutex::new(Some(server)),
            tls: identity,
        })
    }

    pub fn url(&self) -> String {
        format!(
            "{}://127.0.0.1:{}",
            if self.tls.is_some() { "https" } else { "http" },
            self.port
        )
    }

    /// DER of the HTTPS certificate (stable across [`Self::set_down`]).
    pub fn certificate(&self) -> Option<Vec<u8>> {
        self.tls.as_ref().map(|t| t.certificate.clone())
    }

    /// Reads or changes the router's state.
    pub fn with<R>(&self, f: impl FnOnce(&mut RouterState) -> R) -> R {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// Down: nothing listens on the port (connection refused); up: serving again, same port.
    pub async fn set_down(&self, down: bool) -> std::io::Result<()> {
        self.with(|s| s.down = down);
        let current = self.server.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(server) = current {
            server.stop();
        }
        if !down {
            let server = serve_with(router(self.state.clone()), self.port, self.tls.clone()).await?;
            *self.server.lock().unwrap_or_else(|p| p.into_inner()) = Some(server);
        }
        Ok(())
    }
}

fn router(state: routes::Shared) -> axum::Router {
    axum::Router::new().fallback(routes::handle).with_state(state)
}
