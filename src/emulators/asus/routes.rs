//! The router's web server: one handler that dispatches on the path like httpd, checks the
//! session cookie, and applies the injected faults.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;

use super::render;
use super::state::{Fault, RouterState};

pub type Shared = Arc<Mutex<RouterState>>;

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, RouterState> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// httpd's form parser: split on `&` and `;` first, then percent-decode each piece and split
/// it at the first `=` (asus.md §4.1). An unencoded `;` in a hook list therefore cuts it.
pub fn form_fields(raw: &str) -> Vec<(String, String)> {
    raw.split(['&', ';'])
        .filter(|p| !p.is_empty())
        .map(|piece| {
            let decoded = crate::percent::decode(piece);
            match decoded.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (decoded, String::new()),
            }
        })
        .collect()
}

fn is_app(headers: &HeaderMap) -> bool {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| ua.split('-').next() == Some("asusrouter"))
}

fn session_token(headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    cookies.split(';').find_map(|c| {
        let (name, value) = c.trim().split_once('=')?;
        matches!(name, "asus_token" | "asus_s_token").then(|| value.trim().to_owned())
    })
}

fn reply(status: StatusCode, body: String, app: bool) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    headers.insert(header::SERVER, HeaderValue::from_static("httpd/2.0"));
    if app {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json;charset=UTF-8"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    } else {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    }
    response
}

fn not_found() -> Response {
    reply(StatusCode::NOT_FOUND, "File not found.".into(), false)
}

fn error_status(code: u32, app: bool) -> Response {
    if app {
        reply(StatusCode::OK, format!("{{\n\"error_status\":\"{code}\"\n}}\n"), true)
    } else {
        reply(
            StatusCode::OK,
            "<HTML><HEAD><script>top.location.href='/Main_Login.asp';</script>\n</HEAD></HTML>".into(),
            false,
        )
    }
}

pub async fn handle(
    axum::extract::State(state): axum::extract::State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    if lock(&state).down {
        return std::future::pending().await;
    }
    let fault = {
        let mut s = lock(&state);
        *s.stats.requests.entry(path.clone()).or_default() += 1;
        s.stats.last_user_agent = headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        s.fault
    };
    if let Some(Fault::Slow(delay)) = fault {
        tokio::time::sleep(delay).await;
        if lock(&state).down {
            return std::future::pending().await;
        }
    }
    if !matches!(method, Method::GET | Method::POST | Method::HEAD) {
        return reply(StatusCode::NOT_IMPLEMENTED, "Not Implemented".into(), false);
    }
    let app = is_app(&headers);
    let raw = String::from_utf8_lossy(&body).into_owned();
    let query = uri.query().unwrap_or("").to_owned();
    let response = route(&state, &path, &raw, &query, &headers, app);
    match fault {
        Some(Fault::ServerError) => reply(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error".into(), false),
        Some(Fault::Garbage) if response.status() == StatusCode::OK => {
            reply(StatusCode::OK, "\u{0}\u{7f}<<not what you asked for>>{{{".into(), app)
        }
        Some(Fault::Truncated) if response.status() == StatusCode::OK => {
            let (parts, body) = response.into_parts();
            let bytes = axum::body::to_bytes(body, 16 << 20).await.unwrap_or_default();
            let half = bytes.slice(..bytes.len() / 2);
            Response::from_parts(parts, axum::body::Body::from(half))
        }
        _ => response,
    }
}

fn route(state: &Shared, path: &str, body: &str, query: &str, headers: &HeaderMap, app: bool) -> Response {
    match path {
        "/login.cgi" => login(state, body, app),
        "/get_Nonce.cgi" => nonce(state, body),
        "/login_v2.cgi" => login_v2(state, body),
        _ => {
            let mut s = lock(state);
            if path == "/appGet.cgi" {
                s.poll_tick();
            }
            s.advance();
            let token = session_token(headers);
            let valid = token.as_ref().is_some_and(|t| s.sessions.contains(t));
            if !valid {
                return if token.is_none() {
                    error_status(1, app)
                } else {
                    error_status(2, app)
                };
            }
            match path {
                "/appGet.cgi" => {
                    let fields = form_fields(if body.is_empty() { query } else { body });
                    let hook = fields
                        .iter()
                        .find(|(k, _)| k == "hook")
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default();
                    s.stats.hook_fields.push(hook.clone());
                    let text = render::app_get(&mut s, &hook);
                    reply(StatusCode::OK, text, app)
                }
                "/Logout.asp" => {
                    if let Some(t) = token {
                        s.sessions.retain(|x| *x != t);
                    }
                    s.stats.logouts += 1;
                    reply(StatusCode::OK, "{\n\"error_status\":\"8\"\n}\n".into(), app)
                }
                "/ajax_coretmp.asp" => reply(StatusCode::OK, render::coretmp(&s), app),
                "/update_clients.asp" => reply(StatusCode::OK, render::update_clients(&s), app),
                "/ajax_onboarding.asp" => reply(StatusCode::OK, render::onboarding(&s), app),
                "/ajax_status.xml" => reply(StatusCode::OK, render::status_xml(&s), app),
                // A model has either the Trend Micro analyzer's pages or the DNS-based ones.
                "/getWanTraffic.asp" | "/getAppTraffic.asp" if !s.config.dns_analyzer => {
                    let fields = form_fields(query);
                    reply(
                        StatusCode::OK,
                        render::traffic(&s, path == "/getAppTraffic.asp", &fields),
                        app,
                    )
                }
                "/getWanTraffic_Dns.asp" | "/getAppTraffic_Dns.asp" if s.config.dns_analyzer => {
                    let fields = form_fields(query);
                    reply(
                        StatusCode::OK,
                        render::traffic(&s, path == "/getAppTraffic_Dns.asp", &fields),
                        app,
                    )
                }
                "/getTraffic.asp" if s.config.traffic_monitor => {
                    let odd = s.live_faults.odd_once.take();
                    reply(StatusCode::OK, render::live_traffic(&s, odd), app)
                }
                _ => not_found(),
            }
        }
    }
}

fn login(state: &Shared, body: &str, app: bool) -> Response {
    let mut s = lock(state);
    if s.config.nonce_login_only {
        return not_found();
    }
    s.stats.logins += 1;
    let now = std::time::SystemTime::now();
    if let Some(until) = s.locked_until {
        if until > now {
            let remaining = until.duration_since(now).map(|d| d.as_secs()).unwrap_or(0);
            s.stats.failed_logins += 1;
            return reply(
                StatusCode::OK,
                format!("{{\n\"error_status\":\"7\",\"remaining_lock_time\":\"{remaining}\"\n}}\n"),
                app,
            );
        }
        s.locked_until = None;
        s.failures = 0;
    }
    let credentials = form_fields(body)
        .into_iter()
        .find(|(k, _)| k == "login_authorization")
        .and_then(|(_, v)| base64::engine::general_purpose::STANDARD.decode(v.trim()).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    let expected = format!("{}:{}", s.config.username, s.config.password);
    if credentials.as_deref() != Some(expected.as_str()) {
        s.failures += 1;
        s.stats.failed_logins += 1;
        if s.failures >= s.config.lock_after {
            s.locked_until = Some(now + s.config.lock_for);
        }
        return error_status(3, true);
    }
    s.failures = 0;
    issue_token(&mut s, true)
}

fn issue_token(s: &mut RouterState, with_body: bool) -> Response {
    let token = s.new_token();
    s.sessions.push_back(token.clone());
    while s.sessions.len() > s.config.max_sessions {
        s.sessions.pop_front();
    }
    let cookie = if s.config.secure_cookie_name {
        "asus_s_token"
    } else {
        "asus_token"
    };
    let body = if with_body {
        format!("{{\n\"asus_token\":\"{token}\"\n}}\n")
    } else {
        String::new()
    };
    let mut response = reply(StatusCode::OK, body, true);
    if let Ok(v) = HeaderValue::from_str(&format!("{cookie}={token}; HttpOnly;")) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

fn nonce(state: &Shared, body: &str) -> Response {
    let mut s = lock(state);
    let id = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let nonce = format!("{:016x}", s.random());
    s.nonces.insert(id, nonce.clone());
    reply(StatusCode::OK, format!("{{\"nonce\":\"{nonce}\"}}"), true)
}

fn login_v2(state: &Shared, body: &str) -> Response {
    use sha2::{Digest, Sha256};
    let mut s = lock(state);
    s.stats.logins += 1;
    let fields = form_fields(body);
    let get = |k: &str| {
        fields
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (id, cnonce, given) = (get("id"), get("cnonce"), get("login_authorization"));
    let nonce = s.nonces.remove(&id).unwrap_or_default();
    let digest = Sha256::digest(format!("{}:{nonce}:{}:{cnonce}", s.config.username, s.config.password));
    let expected: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    if nonce.is_empty() || given != expected {
        s.failures += 1;
        s.stats.failed_logins += 1;
        return error_status(3, true);
    }
    issue_token(&mut s, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_parser_splits_before_decoding() {
        let fields = form_fields("hook%3Dcpu_usage%28appobj%29%3Bnetdev%28appobj%29");
        assert_eq!(
            fields,
            vec![("hook".to_owned(), "cpu_usage(appobj);netdev(appobj)".to_owned())]
        );
        // An unencoded `;` cuts the list: the second hook becomes a nameless field.
        let fields = form_fields("hook=cpu_usage(appobj);netdev(appobj)");
        assert_eq!(fields[0], ("hook".to_owned(), "cpu_usage(appobj)".to_owned()));
        assert_eq!(fields[1].0, "netdev(appobj)");
    }
}
