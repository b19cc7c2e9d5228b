//! One owner session with the main Deco: the `keys` → `auth` → `login` handshake, encrypted
//! calls, re-login when the Deco drops the session, and logout (deco.md §1–4, §6).
//!
//! Calls are strictly one at a time (`&mut self`): the Deco's session table is small, and
//! parallel calls are what made other integrations churn sessions.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE, HeaderMap, SET_COOKIE};
use serde_json::{Value, json};

use super::crypto::{AesSession, CryptoError, RsaKey, auth_hash};
pub(crate) use super::envelope::open_reply;
use super::envelope::{decrypt_reply, not_json};
use super::etiquette::{AfterLoss, Hold, LoginGate};
use super::protocol::{Endpoint, ErrorCode, ReplyForm, lenient_json, lenient_text, request_body};
use crate::table::Secret;
use crate::sources::body::{self, BodyError, MIB};
use crate::sources::login_memory::LoginJournal;

/// Every Deco client logs in as `admin`; the owner's TP-Link ID is not the username.
const USERNAME: &str = "admin";
const LOGOUT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a call failed. Messages name the endpoint and never contain a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecoError {
    #[error("{endpoint}: cannot reach the Deco: {detail}")]
    Unreachable { endpoint: Endpoint, detail: String },
    #[error("{endpoint}: HTTP {status}{hint}")]
    Http {
        endpoint: Endpoint,
        status: u16,
        hint: &'static str,
    },
    #[error("{endpoint}: {detail}")]
    Invalid { endpoint: Endpoint, detail: String },
    /// The reply passed the endpoint's size cap ([`body_cap`]); treated like an invalid reply.
    #[error("{endpoint}: the reply is larger than {} (refused without reading the rest)", body::human(*.cap))]
    TooLarge { endpoint: Endpoint, cap: usize },
    #[error("{endpoint}: the Deco answered error_code {code}{hint}")]
    Refused {
        endpoint: Endpoint,
        code: ErrorCode,
        hint: &'static str,
    },
    #[error("{endpoint}: the Deco no longer accepts the session ({why})")]
    SessionGone { endpoint: Endpoint, why: &'static str },
    #[error("{endpoint}: not available on this firmware ({why})")]
    Unsupported { endpoint: Endpoint, why: String },
    /// Logins are paused (wrong password, lockout, contested session).
    #[error("{}", .0.message)]
    Held(Hold),
}

/// The largest body accepted from an endpoint (sources/body.rs), several times its largest
/// real reply, so that a broken Deco serving a huge one costs neither memory nor a whole read.
pub fn body_cap(endpoint: Endpoint) -> usize {
    match endpoint {
        // Encrypted JSON, base64 in a JSON string: about 450 bytes a client, some 4.5 MB for
        // 10,000 clients.
        Endpoint::CLIENT_LIST => 16 * MIB,
        // Keys, a session token, an error code.
        Endpoint::KEYS | Endpoint::AUTH | Endpoint::LOGIN | Endpoint::LOGOUT => body::SMALL,
        // The mesh nodes, the WAN, the load: a few kB.
        _ => 4 * MIB,
    }
}

impl DecoError {
    pub(super) fn invalid(endpoint: Endpoint, detail: impl Into<String>) -> Self {
        Self::Invalid {
            endpoint,
            detail: detail.into(),
        }
    }
}

/// What a logged-in session needs for every call.
struct Session {
    stok: String,
    cookie: String,
    aes: AesSession,
    sign_key: RsaKey,
    seq: u64,
    hash: String,
}

pub struct DecoClient {
    source: String,
    http: reqwest::Client,
    /// `scheme://host[:port]`; switches to https for good when the Deco redirects there.
    base: String,
    password: Secret,
    timeout: Duration,
    password_key: Option<RsaKey>,
    session: Option<Session>,
    gate: LoginGate,
    journal: LoginJournal,
}

impl DecoClient {
    pub fn new(source: &str, http: reqwest::Client, url: &str, password: Secret, timeout: Duration) -> Self {
        Self {
            source: source.to_owned(),
            http,
            base: url.trim().trim_end_matches('/').to_owned(),
            password,
            timeout,
            password_key: None,
            session: None,
            gate: LoginGate::default(),
            journal: LoginJournal::none(),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn has_session(&self) -> bool {
        self.session.is_some()
    }

    /// Login attempts so far (successful or not).
    pub fn login_attempts(&self) -> u64 {
        self.gate.attempts
    }

    /// Remembers logins across restarts in `journal`; reads back what the previous run
    /// remembered and returns the credentials hold that is back in force, if any.
    pub fn attach_journal(&mut self, mut journal: LoginJournal) -> Option<String> {
        let recalled = journal.open(self.password.expose());
        self.journal = journal;
        let (memory, same) = recalled?;
        let held = self.gate.recall(&memory, same, Instant::now());
        held.then(|| memory.hold.map(|h| h.reason).unwrap_or_default())
    }

    fn remember(&mut self) {
        self.journal.save(self.gate.memory(Instant::now()));
    }

    /// An encrypted call with the current session, logging in first when there is none, and
    /// once more when the Deco has dropped the session.
    pub async fn read(&mut self, endpoint: Endpoint, request: &Value) -> Result<Value, DecoError> {
        self.read_as(endpoint, request).await
    }

    /// [`Self::read`] into a typed reading of the reply instead of its `result` tree.
    pub async fn read_as<F: ReplyForm>(&mut self, endpoint: Endpoint, request: &Value) -> Result<F, DecoError> {
        if self.session.is_none() {
            self.login().await?;
        }
        match self.call(endpoint, request).await {
            Err(DecoError::SessionGone { why, .. }) => {
                self.session = None;
                match self.gate.session_lost(Instant::now()) {
                    AfterLoss::Wait(hold) => return Err(DecoError::Held(hold)),
                    AfterLoss::LoginAgain => {
                        tracing::info!(source = %self.source, endpoint = %endpoint, reason = why, "Deco session ended; logging in again.");
                    }
                }
                self.login().await?;
                match self.call(endpoint, request).await {
                    Err(DecoError::SessionGone { .. }) => {
                        self.session = None;
                        Err(DecoError::Held(self.gate.contested(Instant::now())))
                    }
                    other => other,
                }
            }
            other => other,
        }
    }

    /// Ends the session on the Deco (shutdown only: the next start needs a new login anyway).
    pub async fn logout(&mut self) {
        if self.session.is_none() {
            return;
        }
        let request = json!({"operation": "logout"});
        let result = tokio::time::timeout(LOGOUT_TIMEOUT, self.call::<Value>(Endpoint::LOGOUT, &request)).await;
        self.session = None;
        match result {
            Ok(Ok(_)) => {
                self.gate.logged_out();
                self.remember();
                tracing::info!(source = %self.source, "Logged out of the Deco.")
            }
            Ok(Err(e)) => {
                tracing::info!(source = %self.source, error = %e, "Deco logout was not confirmed; the session expires on its own.")
            }
            Err(_) => {
                tracing::info!(source = %self.source, "Deco logout timed out; the session expires on its own.")
            }
        }
    }

    async fn login(&mut self) -> Result<(), DecoError> {
        self.gate.check(Instant::now()).map_err(DecoError::Held)?;
        match self.login_once().await {
            // tplinkrouterc6u fetches keys and auth again after a 403 and retries once.
            Err(DecoError::Http { status: 403, .. }) => {
                self.password_key = None;
                match self.login_once().await {
                    Err(DecoError::Http { status: 403, .. }) => {
                        Err(DecoError::Held(self.gate.contested(Instant::now())))
                    }
                    other => other,
                }
            }
            other => other,
        }
    }

    async fn login_once(&mut self) -> Result<(), DecoError> {
        let password_key = match self.password_key.clone() {
            Some(key) => key,
            None => {
                let key = self.fetch_password_key().await?;
                self.password_key = Some(key.clone());
                key
            }
        };
        // A fresh seq (and sign key) for every login, as the spec asks after a lost session.
        let (sign_key, seq) = self.fetch_auth().await?;
        let aes = AesSession::generate();
        let hash = auth_hash(USERNAME, self.password.expose());
        let encrypted_password = password_key
            .encrypt_hex(self.password.expose().as_bytes())
            .map_err(|e| crypto_error(Endpoint::LOGIN, e))?;
        let login = json!({"params": {"password": encrypted_password}, "operation": "login"});
        let body = request_body(&aes, &sign_key, &hash, seq, true, &login.to_string())
            .map_err(|e| crypto_error(Endpoint::LOGIN, e))?;

        self.gate.attempt(Instant::now()).map_err(DecoError::Held)?;
        // Write-ahead: the attempt is on disk before the request can reach the Deco.
        self.remember();
        let result = self.finish_login(aes, sign_key, seq, hash, body).await;
        // The refusal (or the success that clears it) is on disk before anything else happens.
        self.remember();
        result
    }

    async fn finish_login(
        &mut self,
        aes: AesSession,
        sign_key: RsaKey,
        seq: u64,
        hash: String,
        body: String,
    ) -> Result<(), DecoError> {
        let reply = self
            .post(Endpoint::LOGIN, "", body, None)
            .await
            .map_err(|e| match e {
                DecoError::Unreachable { endpoint, detail } if detail.starts_with("no answer") => {
                    DecoError::Unreachable {
                        endpoint,
                        detail: format!(
                            "{detail}, although keys and auth answered: the Deco's login is stuck (a known firmware fault, X55 fw 1.8); rebooting the Deco helps"
                        ),
                    }
                }
                other => other,
            })?;
        if !reply.status.is_success() {
            return Err(http_error(Endpoint::LOGIN, reply.status));
        }
        let doc = open_reply(Endpoint::LOGIN, &reply.body, &aes).map_err(|e| match e {
            DecoError::SessionGone { .. } => DecoError::invalid(Endpoint::LOGIN, "the login reply has empty data"),
            other => other,
        })?;
        match ErrorCode::of(&doc) {
            ErrorCode::Ok => {}
            ErrorCode::Code(-5002) => {
                let left = doc.pointer("/result/attemptsAllowed").and_then(Value::as_i64);
                let hold = self.gate.wrong_password(Instant::now(), left);
                return Err(DecoError::Held(hold));
            }
            ErrorCode::Code(-5003) => {
                return Err(DecoError::Held(self.gate.locked(Instant::now())));
            }
            code => {
                return Err(DecoError::Refused {
                    endpoint: Endpoint::LOGIN,
                    code,
                    hint: "",
                });
            }
        }
        let stok = doc
            .pointer("/result/stok")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric()))
            .ok_or_else(|| DecoError::invalid(Endpoint::LOGIN, "the login reply has no stok"))?;
        let cookie = sysauth_cookie(&reply.headers)
            .ok_or_else(|| DecoError::invalid(Endpoint::LOGIN, "the login reply sets no sysauth cookie"))?;
        self.session = Some(Session {
            stok: stok.to_owned(),
            cookie,
            aes,
            sign_key,
            seq,
            hash,
        });
        self.gate.login_ok();
        tracing::info!(source = %self.source, url = %self.base, "Logged in to the Deco.");
        Ok(())
    }

    async fn fetch_password_key(&mut self) -> Result<RsaKey, DecoError> {
        let endpoint = Endpoint::KEYS;
        let doc = self.plain(endpoint).await?;
        let key = doc.pointer("/result/password").and_then(Value::as_array);
        let part = |i: usize| key.and_then(|k| k.get(i)).and_then(Value::as_str);
        match (part(0), part(1)) {
            (Some(n), Some(e)) => RsaKey::from_hex(n, e).map_err(|e| crypto_error(endpoint, e)),
            _ => Err(DecoError::invalid(endpoint, "the reply has no result.password key")),
        }
    }

    async fn fetch_auth(&mut self) -> Result<(RsaKey, u64), DecoError> {
        let endpoint = Endpoint::AUTH;
        let doc = self.plain(endpoint).await?;
        let key = doc.pointer("/result/key").and_then(Value::as_array);
        let part = |i: usize| key.and_then(|k| k.get(i)).and_then(Value::as_str);
        let seq = match doc.pointer("/result/seq") {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        match (part(0), part(1), seq) {
            (Some(n), Some(e), Some(seq)) => Ok((RsaKey::from_hex(n, e).map_err(|e| crypto_error(endpoint, e))?, seq)),
            _ => Err(DecoError::invalid(
                endpoint,
                "the reply has no result.key and result.seq",
            )),
        }
    }

    /// `keys` and `auth`: unencrypted, before login.
    async fn plain(&mut self, endpoint: Endpoint) -> Result<Value, DecoError> {
        let reply = self
            .post(endpoint, "", r#"{"operation":"read"}"#.to_owned(), None)
            .await?;
        if reply.status == StatusCode::UNAUTHORIZED && endpoint == Endpoint::KEYS {
            return Err(DecoError::Unsupported {
                endpoint,
                why: "HTTP 401: legacy Deco firmware (S7-type) whose web API is not supported".into(),
            });
        }
        if !reply.status.is_success() {
            return Err(http_error(endpoint, reply.status));
        }
        let doc = lenient_json(&reply.body).map_err(|_| DecoError::invalid(endpoint, not_json(&reply.body)))?;
        match ErrorCode::of(&doc) {
            ErrorCode::Ok | ErrorCode::Missing => Ok(doc),
            code => Err(DecoError::Refused {
                endpoint,
                code,
                hint: "",
            }),
        }
    }

    /// One encrypted call with the current session, no retries.
    async fn call<F: ReplyForm>(&mut self, endpoint: Endpoint, request: &Value) -> Result<F, DecoError> {
        let session = self.session.as_ref().ok_or(DecoError::SessionGone {
            endpoint,
            why: "not logged in",
        })?;
        let body = request_body(
            &session.aes,
            &session.sign_key,
            &session.hash,
            session.seq,
            false,
            &request.to_string(),
        )
        .map_err(|e| crypto_error(endpoint, e))?;
        let (stok, cookie) = (session.stok.clone(), session.cookie.clone());
        let reply = self.post(endpoint, &stok, body, Some(&cookie)).await?;
        match reply.status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(DecoError::SessionGone {
                    endpoint,
                    why: "HTTP 403",
                });
            }
            StatusCode::NOT_FOUND => {
                return Err(DecoError::Unsupported {
                    endpoint,
                    why: "HTTP 404".into(),
                });
            }
            status if !status.is_success() => return Err(http_error(endpoint, status)),
            _ => {}
        }
        let session = self.session.as_ref().ok_or(DecoError::SessionGone {
            endpoint,
            why: "not logged in",
        })?;
        let plain = decrypt_reply(endpoint, &reply.body, &session.aes)?;
        let text = lenient_text(&plain);
        let (code, result) = F::read(&text)
            .map_err(|e| DecoError::invalid(endpoint, format!("the decrypted reply is not JSON: {e}")))?;
        if tracing::enabled!(tracing::Level::TRACE)
            && endpoint != Endpoint::LOGOUT
            && let Ok(doc) = serde_json::from_str::<Value>(&text)
        {
            tracing::trace!(source = %self.source, endpoint = %endpoint, body = %doc, "Decrypted Deco reply.");
        }
        match code {
            ErrorCode::Ok => Ok(result),
            ErrorCode::Code(-40401) => Err(DecoError::SessionGone {
                endpoint,
                why: "error_code -40401",
            }),
            ErrorCode::Code(1) => Err(DecoError::Unsupported {
                endpoint,
                why: "error_code 1".into(),
            }),
            ErrorCode::Text(t) if t.eq_ignore_ascii_case("timeout") => Err(DecoError::Refused {
                endpoint,
                code: ErrorCode::Text(t),
                hint: " (the Deco timed out internally; trying again next poll)",
            }),
            code => Err(DecoError::Refused {
                endpoint,
                code,
                hint: "",
            }),
        }
    }

    async fn post(
        &mut self,
        endpoint: Endpoint,
        stok: &str,
        body: String,
        cookie: Option<&str>,
    ) -> Result<Reply, DecoError> {
        let mut request = self
            .http
            .post(endpoint.url(&self.base, stok))
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, format!("sysauth={cookie}"));
        }
        let response = request.send().await.map_err(|e| {
            if e.is_connect() {
                // A Deco that refuses connections is rebooting: its sessions are gone.
                self.session = None;
            }
            DecoError::Unreachable {
                endpoint,
                detail: describe(&e, self.timeout),
            }
        })?;
        self.follow_scheme(response.url());
        let status = response.status();
        let headers = response.headers().clone();
        let body = body::read_capped(response, body_cap(endpoint))
            .await
            .map_err(|e| match e {
                BodyError::TooLarge { cap } => DecoError::TooLarge { endpoint, cap },
                BodyError::Transport(e) => DecoError::Unreachable {
                    endpoint,
                    detail: describe(&e, self.timeout),
                },
            })?;
        Ok(Reply { status, headers, body })
    }

    /// Newer firmware redirects http:// to https:// (deco.md §1); stay on https from then on,
    /// so the cookie never rides a redirect.
    fn follow_scheme(&mut self, final_url: &reqwest::Url) {
        let Ok(base) = reqwest::Url::parse(&self.base) else {
            return;
        };
        if final_url.scheme() != base.scheme() || final_url.port_or_known_default() != base.port_or_known_default() {
            let origin = final_url.origin().ascii_serialization();
            tracing::info!(source = %self.source, from = %self.base, to = %origin, "The Deco redirected to another address; using it from now on.");
            self.base = origin;
        }
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// `Set-Cookie: sysauth=<v>; path=…` → `<v>`.
fn sysauth_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let start = v.find("sysauth=")? + "sysauth=".len();
            let value = v[start..].split(';').next()?.trim();
            (!value.is_empty()).then(|| value.to_owned())
        })
}

fn http_error(endpoint: Endpoint, status: StatusCode) -> DecoError {
    let hint = match status.as_u16() {
        500 | 502 | 503 => " (the Deco is overloaded or its firmware failed; trying again next poll)",
        403 => " (refused; the owner account may be in use elsewhere)",
        _ => "",
    };
    DecoError::Http {
        endpoint,
        status: status.as_u16(),
        hint,
    }
}

fn crypto_error(endpoint: Endpoint, e: CryptoError) -> DecoError {
    DecoError::invalid(endpoint, e.to_string())
}

/// A transport error without the URL, which holds the session's stok.
fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    crate::http::describe_error(
        e,
        || format!("no answer within {}", humantime::format_duration(timeout)),
        "connection failed",
        "request failed",
    )
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    #[test]
    fn cookie_is_read_leniently() {
        let mut headers = HeaderMap::new();
        headers.append(SET_COOKIE, HeaderValue::from_static("other=1"));
        headers.append(
            SET_COOKIE,
            HeaderValue::from_static("sysauth=66f1d4bf6cce406e7b2a37cfd75e6e26; path=/cgi-bin/luci; HttpOnly"),
        );
        assert_eq!(
            sysauth_cookie(&headers).as_deref(),
            Some("66f1d4bf6cce406e7b2a37cfd75e6e26")
        );
        let mut bare = HeaderMap::new();
        bare.append(SET_COOKIE, HeaderValue::from_static("sysauth=abc"));
        assert_eq!(sysauth_cookie(&bare).as_deref(), Some("abc"));
        assert_eq!(sysauth_cookie(&HeaderMap::new()), None);
    }

    #[test]
    fn replies_are_classified() {
        let aes = AesSession::new("1415950173028918", "5652578606663031").unwrap();
        let ep = Endpoint::PERFORMANCE;
        assert!(matches!(
            open_reply(ep, br#"{"data":""}"#, &aes),
            Err(DecoError::SessionGone { .. })
        ));
        assert!(matches!(
            open_reply(ep, b"<html>busy</html>", &aes),
            Err(DecoError::Invalid { .. })
        ));
        assert!(matches!(
            open_reply(ep, br#"{"data":"AAAA"}"#, &aes),
            Err(DecoError::Invalid { .. })
        ));
        assert!(matches!(
            open_reply(ep, br#"{"error_code":-1}"#, &aes),
            Err(DecoError::Refused { .. })
        ));
        let data = aes.encrypt_b64(br#"{"error_code":0,"result":{"cpu_usage":0.5}}"#);
        let doc = open_reply(ep, format!(r#"{{"data":"{data}"}}"#).as_bytes(), &aes).unwrap();
        assert_eq!(doc["result"]["cpu_usage"], 0.5);
        let err = open_reply(ep, b"\x01\x02garbage", &aes).unwrap_err();
        assert_eq!(
            err.to_string(),
            "admin/network?form=performance: the reply is not JSON (9 bytes, starting `garbage`)"
        );
    }
}
