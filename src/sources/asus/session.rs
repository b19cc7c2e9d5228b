//! One logged-in session with one router: `login.cgi` with the phone app's User-Agent (so the
//! router never counts us as the web-admin user, asus.md §2.2, §3.2), the token reused for every
//! request, a re-login only when the router says the session is gone, `Logout.asp` on shutdown.

use std::time::Duration;

use base64::Engine;
use tokio::time::Instant;

use super::etiquette::{Deferred, LoginGuard};
use super::hookjson;
use crate::table::Secret;
use crate::sources::body::{self, BodyError, MIB};
use crate::sources::login_memory::LoginJournal;

/// What the ASUS app sends; only the `asusrouter` prefix and the `DUTUtil` marker matter.
pub const USER_AGENT: &str = "asusrouter-Android-DUTUtil-1.0.0.245";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AsusError {
    #[error("{endpoint}: {detail}")]
    Unreachable { endpoint: String, detail: String },
    #[error("{endpoint}: HTTP {status}")]
    Http { endpoint: String, status: u16 },
    #[error("{endpoint}: {detail}")]
    Invalid { endpoint: String, detail: String },
    /// The reply passed the page's size cap ([`body_cap`]); treated like an invalid reply.
    #[error("{endpoint}: the reply is larger than {} (refused without reading the rest)", body::human(*.cap))]
    TooLarge { endpoint: String, cap: usize },
    /// The router refused the credentials (or demands a captcha, or is locked).
    #[error("login refused: {0}")]
    Auth(String),
    /// The etiquette holds further logins back. The text names an absolute time so that it is
    /// the same on every poll (a changing countdown would log a "new" error each time).
    #[error("not logging in before {}: {}", humantime::format_rfc3339_seconds(.0.until_wall), .0.reason)]
    Deferred(Deferred),
}

/// The largest body accepted from a page (sources/body.rs), several times its largest real
/// reply, so that a broken router serving a huge one costs neither memory nor a whole read.
pub fn body_cap(path: &str) -> usize {
    match path.split('?').next().unwrap_or(path).trim_start_matches('/') {
        // A token or an error_status object: a few hundred bytes.
        "login.cgi" | "get_Nonce.cgi" | "login_v2.cgi" | "Logout.asp" => body::SMALL,
        // The client list: under 1 kB per client, about 3 MB for 5,000 clients.
        "appGet.cgi" => 16 * MIB,
        // getTraffic.asp (about 50 bytes a client: over 80,000 clients), the Traffic Analyzer
        // pages (an 8,000-byte output buffer on the router, asus.md §6.4) and the rest.
        _ => 4 * MIB,
    }
}

/// The session cookie; newer firmware over HTTPS names it `asus_s_token`.
#[derive(Debug, Clone)]
struct Token {
    cookie: &'static str,
    value: String,
}

/// How a reply says the session is no longer valid.
fn session_gone(body: &str) -> bool {
    if body.contains("Main_Login.asp") {
        return true;
    }
    error_status(body).is_some_and(|code| code == 1 || code == 2)
}

/// `error_status` of a small JSON error object; data replies never carry it (asus.md §3.1).
fn error_status(body: &str) -> Option<u32> {
    let trimmed = body.trim_start_matches('\u{feff}').trim();
    if !trimmed.starts_with('{') || trimmed.len() > 512 {
        return None;
    }
    let map = hookjson::parse_object(trimmed).ok()?;
    hookjson::text(&map, "error_status")?.trim().parse().ok()
}

pub struct Session {
    http: reqwest::Client,
    base: String,
    router: String,
    username: String,
    password: Secret,
    token: Option<Token>,
    guard: LoginGuard,
    /// The router could not be reached (or rebooted) since our last login: a session lost now
    /// was lost to that, not ended by the router while it stayed up.
    interrupted: bool,
    journal: LoginJournal,
    /// Logins attempted over the session's life, for logs and tests.
    pub logins: u64,
}

impl Session {
    pub fn new(http: reqwest::Client, base: &str, router: &str, username: &str, password: Secret) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            router: router.to_owned(),
            username: username.to_owned(),
            password,
            token: None,
            guard: LoginGuard::default(),
            interrupted: false,
            journal: LoginJournal::none(),
            logins: 0,
        }
    }

    /// POSTs `body` to `path` with the session, logging in first if needed and once more if the
    /// router says the session is gone.
    pub async fn post(&mut self, path: &str, body: String) -> Result<String, AsusError> {
        self.request(path, Some(body)).await
    }

    async fn request(&mut self, path: &str, body: Option<String>) -> Result<String, AsusError> {
        let endpoint = path.split('?').next().unwrap_or(path);
        for attempt in 0..2 {
            self.ensure_login().await?;
            let text = match self.send_with(path, body.clone()).await {
                Err(e @ AsusError::Unreachable { .. }) => {
                    self.interrupted = true;
                    return Err(e);
                }
                other => other?,
            };
            if session_gone(&text) {
                self.token = None;
                self.guard.session_lost(Instant::now(), !self.interrupted);
                self.interrupted = false;
                tracing::info!(source = %self.router, endpoint, "Router ended our session; logging in again.");
                if attempt == 0 {
                    continue;
                }
                return Err(AsusError::Invalid {
                    endpoint: endpoint.to_owned(),
                    detail: "session rejected right after a fresh login".into(),
                });
            }
            if let Some(code) = error_status(&text) {
                return Err(AsusError::Invalid {
                    endpoint: path.to_owned(),
                    detail: format!("router answered error_status {code}"),
                });
            }
            return Ok(text);
        }
        unreachable_session(path)
    }

    /// GETs `path_and_query` with the session (the Traffic Analyzer pages are GET pages).
    pub async fn get(&mut self, path_and_query: &str) -> Result<String, AsusError> {
        self.request(path_and_query, None).await
    }

    async fn send(&self, path: &str, body: String) -> Result<String, AsusError> {
        self.send_with(path, Some(body)).await
    }

    async fn send_with(&self, path: &str, body: Option<String>) -> Result<String, AsusError> {
        let url = format!("{}{path}", self.base);
        let mut request = match body {
            Some(body) => self.http.post(url).body(body),
            None => self.http.get(url),
        }
        .header("User-Agent", USER_AGENT);
        if let Some(token) = &self.token {
            request = request.header("Cookie", format!("{}={}", token.cookie, token.value));
        }
        let response = request.send().await.map_err(|e| transport(path, &e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(AsusError::Http {
                endpoint: path.to_owned(),
                status: status.as_u16(),
            });
        }
        let bytes = read_body(path, response).await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    async fn ensure_login(&mut self) -> Result<(), AsusError> {
        if self.token.is_some() {
            return Ok(());
        }
        self.guard.permit(Instant::now()).map_err(AsusError::Deferred)?;
        self.logins += 1;
        // Write-ahead: the attempt is on disk before the request can reach the router.
        self.remember();
        let result = self.login().await;
        if result.is_ok() {
            self.guard.succeeded(Instant::now());
            self.interrupted = false;
        }
        if matches!(result, Err(AsusError::Unreachable { .. })) {
            self.interrupted = true;
        }
        // The refusal (or the success that clears it) is on disk before anything else happens.
        self.remember();
        let token = result?;
        tracing::info!(source = %self.router, cookie = token.cookie, "Logged in to the router.");
        self.token = Some(token);
        Ok(())
    }

    async fn login(&mut self) -> Result<Token, AsusError> {
        let credentials = format!("{}:{}", self.username, self.password.expose());
        let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
        // The router percent-decodes each field before splitting at `=`; encoding the base64
        // padding is what the app does.
        let body = format!("login_authorization={}", crate::percent::encode(&encoded));
        let response = self
            .http
            .post(format!("{}/login.cgi", self.base))
            .header("User-Agent", USER_AGENT)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| transport("login.cgi", &e))?;
        let status = response.status();
        let cookie = token_cookie(response.headers());
        let text = read_text("login.cgi", response).await?;
        if status.as_u16() == 404 {
            return self.nonce_login().await;
        }
        if !status.is_success() {
            return Err(AsusError::Http {
                endpoint: "login.cgi".into(),
                status: status.as_u16(),
            });
        }
        if let Some(code) = error_status(&text) {
            return Err(self.login_refused(code, &text));
        }
        let from_body = hookjson::parse_object(&text)
            .ok()
            .and_then(|m| hookjson::text(&m, "asus_token"))
            .filter(|t| !t.is_empty());
        match (from_body, cookie) {
            (Some(value), Some(c)) => Ok(Token {
                cookie: c.cookie,
                value,
            }),
            (Some(value), None) => Ok(Token {
                cookie: "asus_token",
                value,
            }),
            (None, Some(c)) => Ok(c),
            // Neither a token nor an error: firmware that wants the nonce login.
            (None, None) => self.nonce_login().await,
        }
    }

    /// Newer web UIs: `get_Nonce.cgi` then `login_v2.cgi` with a SHA-256 digest; the token
    /// comes back only as a cookie (asus.md §2.3).
    async fn nonce_login(&mut self) -> Result<Token, AsusError> {
        use sha2::{Digest, Sha256};
        let id = format!("{:016x}", rand::random::<u64>());
        let nonce_reply = self
            .http
            .post(format!("{}/get_Nonce.cgi", self.base))
            .header("User-Agent", USER_AGENT)
            .header("Content-Type", "application/json")
            .body(format!("{{\"id\":\"{id}\"}}"))
            .send()
            .await
            .map_err(|e| transport("get_Nonce.cgi", &e))?;
        if !nonce_reply.status().is_success() {
            return Err(AsusError::Http {
                endpoint: "get_Nonce.cgi".into(),
                status: nonce_reply.status().as_u16(),
            });
        }
        let text = read_text("get_Nonce.cgi", nonce_reply).await?;
        let nonce = hookjson::parse_object(&text)
            .ok()
            .and_then(|m| hookjson::text(&m, "nonce"))
            .ok_or_else(|| AsusError::Invalid {
                endpoint: "get_Nonce.cgi".into(),
                detail: "no nonce in the reply".into(),
            })?;
        let cnonce = format!("{:032x}", rand::random::<u128>());
        let digest = Sha256::digest(format!("{}:{nonce}:{}:{cnonce}", self.username, self.password.expose()));
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let body = format!(
            "id={id}&cnonce={cnonce}&login_authorization={hex}&login_captcha=&current_page=Main_Login.asp&next_page=index.asp&action_wait=5"
        );
        let response = self
            .http
            .post(format!("{}/login_v2.cgi", self.base))
            .header("User-Agent", USER_AGENT)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| transport("login_v2.cgi", &e))?;
        let cookie = token_cookie(response.headers());
        let text = read_text("login_v2.cgi", response).await?;
        if let Some(code) = error_status(&text) {
            return Err(self.login_refused(code, &text));
        }
        cookie.ok_or_else(|| AsusError::Invalid {
            endpoint: "login_v2.cgi".into(),
            detail: "no session cookie in the reply".into(),
        })
    }

    /// Maps a login `error_status` to what the etiquette does about it, logged once.
    fn login_refused(&mut self, code: u32, body: &str) -> AsusError {
        let now = Instant::now();
        match code {
            3 => {
                let hold = self.guard.wrong_password(now);
                let message = format!(
                    "the router rejected the username or password; not trying again for {} (the router would lock the account after 5 failures)",
                    humantime::format_duration(hold)
                );
                AsusError::Auth(message)
            }
            7 | 11 => {
                let remaining = hookjson::parse_object(body)
                    .ok()
                    .and_then(|m| hookjson::text(&m, "remaining_lock_time"))
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .unwrap_or(300);
                self.guard.locked(now, Duration::from_secs(remaining));
                let message = format!("the router has locked logins for {remaining} s after too many failures");
                AsusError::Auth(message)
            }
            10 => {
                self.guard.captcha(now);
                let message =
                    "the router demands a captcha; log in once in a browser or turn the captcha off".to_owned();
                AsusError::Auth(message)
            }
            other => {
                let message = format!("router refused the login (error_status {other})");
                self.guard.refused(now, message.clone());
                AsusError::Auth(message)
            }
        }
    }

    /// The router rebooted (its boot time moved): the session it dropped was not ended on
    /// purpose, so the next loss does not count towards the hold-off either.
    pub fn router_restarted(&mut self) {
        self.interrupted = true;
        self.guard.router_restarted();
    }

    /// Remembers logins across restarts in `journal`; reads back what the previous run
    /// remembered and returns the credentials hold that is back in force, if any.
    pub fn attach_journal(&mut self, mut journal: LoginJournal) -> Option<String> {
        let recalled = journal.open(self.password.expose());
        self.journal = journal;
        let (memory, same) = recalled?;
        let held = self.guard.recall(&memory, same, Instant::now());
        held.then(|| memory.hold.map(|h| h.reason).unwrap_or_default())
    }

    fn remember(&mut self) {
        self.journal.save(self.guard.memory(Instant::now()));
    }

    /// Frees the session on the router (the app-token list is small on some firmware).
    pub async fn logout(&mut self) {
        if self.token.is_none() {
            return;
        }
        match self.send("/Logout.asp", String::new()).await {
            Ok(text) if error_status(&text) == Some(8) => {
                self.guard.logged_out();
                self.remember();
                tracing::info!(source = %self.router, "Logged out of the router.")
            }
            Ok(_) => tracing::debug!(source = %self.router, "Logout answered unexpectedly."),
            Err(e) => tracing::debug!(source = %self.router, error = %e, "Logout failed."),
        }
        self.token = None;
    }
}

fn unreachable_session(path: &str) -> Result<String, AsusError> {
    Err(AsusError::Invalid {
        endpoint: path.to_owned(),
        detail: "no session".into(),
    })
}

/// `asus_token` or `asus_s_token` from `Set-Cookie`, sent back under the same name.
fn token_cookie(headers: &reqwest::header::HeaderMap) -> Option<Token> {
    headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|cookie| {
            let (name, rest) = cookie.split_once('=')?;
            let value = rest.split(';').next()?.trim();
            let name = match name.trim() {
                "asus_token" => "asus_token",
                "asus_s_token" => "asus_s_token",
                _ => return None,
            };
            (!value.is_empty()).then(|| Token {
                cookie: name,
                value: value.to_owned(),
            })
        })
}

/// A reply's body, refused past the page's cap.
async fn read_body(path: &str, response: reqwest::Response) -> Result<Vec<u8>, AsusError> {
    body::read_capped(response, body_cap(path)).await.map_err(|e| match e {
        BodyError::TooLarge { cap } => AsusError::TooLarge {
            endpoint: path.trim_start_matches('/').to_owned(),
            cap,
        },
        BodyError::Transport(e) => transport(path, &e),
    })
}

async fn read_text(path: &str, response: reqwest::Response) -> Result<String, AsusError> {
    Ok(String::from_utf8_lossy(&read_body(path, response).await?).into_owned())
}

fn transport(endpoint: &str, e: &reqwest::Error) -> AsusError {
    let detail = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        format!("cannot connect ({})", root_cause(e))
    } else {
        root_cause(e)
    };
    AsusError::Unreachable {
        endpoint: endpoint.trim_start_matches('/').to_owned(),
        detail,
    }
}

fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cause = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    cause
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_session_and_error_replies() {
        assert!(session_gone("{\n\"error_status\":\"2\"\n}\n"));
        assert!(session_gone("{\"error_status\":1}"));
        assert!(session_gone(
            "<HTML><HEAD><script>top.location.href='/Main_Login.asp';</script></HEAD></HTML>"
        ));
        assert!(!session_gone("{\"error_status\":\"3\"}"));
        assert_eq!(
            error_status("{\"error_status\":\"7\",\"remaining_lock_time\":\"120\"}"),
            Some(7)
        );
        // A big data reply is never taken for an error, whatever text it carries.
        let data = format!("{{\"get_clientlist\":{{\"x\":\"{}error_status\"}}}}", "a".repeat(600));
        assert_eq!(error_status(&data), None);
    }
}
