//! HTTP: routes on the raw path (`/cgi-bin/luci/;stok=<x>/<path>?form=<form>`), reads bodies
//! whatever their Content-Type says, and answers like a Deco (deco.md §1, §10).

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::auth::{Login, Reject};
use super::mesh;
use super::{DecoEmulator, Garbage, RequestRecord, SessionGone, State};
use crate::model::MacAddr;
use crate::sources::deco::crypto::AesSession;
use crate::sources::deco::protocol::{form_decode, lenient_json};

const PREFIX: &str = "/cgi-bin/luci/;stok=";

/// An answer, built under the state lock and sent after it is released.
enum Reply {
    Json {
        status: StatusCode,
        body: Value,
        cookie: Option<String>,
    },
    Html(StatusCode, &'static str),
}

impl Reply {
    fn json(body: Value) -> Self {
        Self::Json {
            status: StatusCode::OK,
            body,
            cookie: None,
        }
    }

    fn status(&self) -> u16 {
        match self {
            Self::Json { status, .. } | Self::Html(status, _) => status.as_u16(),
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        match self {
            Self::Json { status, body, cookie } => {
                let mut response = (status, body.to_string()).into_response();
                let headers = response.headers_mut();
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                if let Some(cookie) = cookie
                    && let Ok(value) = HeaderValue::from_str(&format!("sysauth={cookie}; path=/cgi-bin/luci; HttpOnly"))
                {
                    headers.insert(header::SET_COOKIE, value);
                }
                response
            }
            Self::Html(status, text) => (status, [(header::CONTENT_TYPE, "text/html")], text).into_response(),
        }
    }
}

pub(super) async fn handle(
    AxumState(emu): AxumState<DecoEmulator>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = String::from_utf8_lossy(&body).into_owned();
    let (reply, delay) = {
        let mut state = emu.state();
        let now = emu.clock().now_ms();
        let mut record = RequestRecord {
            method: method.to_string(),
            target: redact_stok(&uri),
            content_type: headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body_len: body.len(),
            sign_len: form_decode(&body)
                .into_iter()
                .find(|(k, _)| k == "sign")
                .map(|(_, v)| v.len()),
            cookie: headers.contains_key(header::COOKIE),
            operation: None,
            status: 0,
        };
        let (reply, delay) = if method == Method::POST {
            route(&emu, &mut state, now, &uri, &headers, &body, &mut record)
        } else {
            (Reply::Html(StatusCode::OK, "<html><title>Deco</title></html>"), None)
        };
        record.status = reply.status();
        state.record(record);
        (reply, delay)
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    reply.into_response()
}

fn route(
    emu: &DecoEmulator,
    state: &mut State,
    now: i64,
    uri: &Uri,
    headers: &HeaderMap,
    body: &str,
    record: &mut RequestRecord,
) -> (Reply, Option<Duration>) {
    let Some(rest) = uri.path().strip_prefix(PREFIX) else {
        return (Reply::Html(StatusCode::NOT_FOUND, "not found"), None);
    };
    let (stok, path) = rest.split_once('/').unwrap_or((rest, ""));
    let query = form_decode(uri.query().unwrap_or(""));
    let query_field = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let form = query_field("form").unwrap_or_default();
    match (path, form.as_str()) {
        ("login", "keys") => {
            state.stats.keys += 1;
            record.operation = plain_operation(body).or_else(|| query_field("operation"));
            let result = state.auth.keys_result();
            (Reply::json(json!({"result": result, "error_code": 0})), None)
        }
        ("login", "auth") => {
            state.stats.auth += 1;
            record.operation = plain_operation(body).or_else(|| query_field("operation"));
            let result = state.auth.auth_result();
            (Reply::json(json!({"result": result, "error_code": 0})), None)
        }
        ("login", "login") => (login(state, body, record), state.faults.login_delay),
        _ if path.starts_with("admin/") => admin(emu, state, now, stok, path, &form, headers, body, record),
        _ => (Reply::Html(StatusCode::NOT_FOUND, "not found"), None),
    }
}

fn login(state: &mut State, body: &str, record: &mut RequestRecord) -> Reply {
    state.stats.login_attempts += 1;
    let (outcome, aes) = match state.auth.login(body) {
        Ok(pair) => pair,
        Err(_) => {
            state.stats.bad_signs += 1;
            return Reply::json(json!({"error_code": -40401, "result": {}}));
        }
    };
    record.operation = Some("login".into());
    let (doc, cookie) = match outcome {
        Login::Ok { stok, cookie } => {
            state.stats.logins_ok += 1;
            (json!({"error_code": 0, "result": {"stok": stok}}), Some(cookie))
        }
        Login::WrongPassword { failures } => {
            state.stats.wrong_passwords += 1;
            state.stats.max_failures = state.stats.max_failures.max(failures);
            let left = super::LOCKOUT_AFTER - failures;
            (
                json!({"error_code": -5002, "result": {"attemptsAllowed": left, "failureCount": failures}}),
                None,
            )
        }
        Login::Locked => {
            state.stats.locked_answers += 1;
            state.stats.max_failures = state.stats.max_failures.max(state.auth.failures);
            (
                json!({"error_code": -5003, "result": {"failureCount": state.auth.failures, "attemptsAllowed": 0}}),
                None,
            )
        }
    };
    Reply::Json {
        status: StatusCode::OK,
        body: json!({"data": aes.encrypt_b64(doc.to_string().as_bytes())}),
        cookie,
    }
}

#[allow(clippy::too_many_arguments)]
fn admin(
    emu: &DecoEmulator,
    state: &mut State,
    now: i64,
    stok: &str,
    path: &str,
    form: &str,
    headers: &HeaderMap,
    body: &str,
    record: &mut RequestRecord,
) -> (Reply, Option<Duration>) {
    let endpoint = format!("{path}?form={form}");
    *state.stats.calls.entry(endpoint).or_default() += 1;
    if state.faults.owner_active {
        state.auth.session = None;
    }
    let cookie = sysauth(headers);
    let Some(session) = state.auth.session_for(stok, cookie.as_deref()).cloned() else {
        state.stats.sessions_rejected += 1;
        return (session_gone(state.faults.session_gone), None);
    };
    let (request, with_key) = match state.auth.open_call(&session, body) {
        Ok(pair) => pair,
        Err(Reject::BadData | Reject::BadSign | Reject::WrongSign) => {
            state.stats.bad_signs += 1;
            return (Reply::json(json!({"error_code": -40401})), None);
        }
    };
    if with_key {
        state.stats.signs_with_key += 1;
    } else {
        state.stats.signs_without_key += 1;
    }
    let operation = request
        .get("operation")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    record.operation = Some(operation.clone());
    let params = request.get("params").cloned().unwrap_or(Value::Null);

    let faults = state.faults.clone();
    let is_client_list = path == "admin/client" && form == "client_list";
    let mut delay = None;
    if is_client_list {
        delay = faults.client_list_delay;
        if faults.client_list_http_500 {
            return (
                Reply::Html(StatusCode::INTERNAL_SERVER_ERROR, "<html>500</html>"),
                delay,
            );
        }
    }
    let doc = match answer(emu, state, now, path, form, &operation, &params) {
        Answer::Result(result) => json!({"error_code": 0, "result": result}),
        Answer::Code(code) => json!({"error_code": code, "result": {}}),
        Answer::NotFound => return (Reply::Html(StatusCode::NOT_FOUND, "not found"), None),
    };
    let doc = if is_client_list && faults.client_list_timeout_code {
        json!({"error_code": "timeout"})
    } else {
        doc
    };
    if path == "admin/system" && form == "logout" {
        state.stats.logouts += 1;
        state.auth.session = None;
    }
    (encrypt(&session.aes, &doc, faults.garbage), delay)
}

enum Answer {
    Result(Value),
    Code(Value),
    NotFound,
}

fn answer(
    emu: &DecoEmulator,
    state: &mut State,
    now: i64,
    path: &str,
    form: &str,
    operation: &str,
    params: &Value,
) -> Answer {
    let config = &emu.inner.config;
    let read = operation == "read";
    let unknown_op = Answer::Code(json!(1));
    match (path, form) {
        ("admin/client", "client_list") if read => {
            let node = params
                .get("device_mac")
                .and_then(Value::as_str)
                .filter(|m| *m != "default")
                .map(|m| {
                    m.parse::<MacAddr>()
                        .ok()
                        .and_then(|mac| config.nodes.iter().position(|n| n.mac == mac))
                });
            if node.is_some() && state.faults.per_node_timeout {
                return Answer::Code(json!("timeout"));
            }
            let list = client_entries(config, state, now, node);
            if state.faults.garbage == Some(Garbage::WrongShape) {
                return Answer::Result(json!({"client_list": {"unexpected": list.len()}}));
            }
            Answer::Result(json!({ "client_list": list }))
        }
        ("admin/client", "traffic_stat") if operation == "list" => {
            let list = client_entries(config, state, now, None);
            Answer::Result(mesh::traffic_stat(&list))
        }
        ("admin/device", "device_list") if read => {
            if state.faults.garbage == Some(Garbage::WrongShape) {
                return Answer::Result(json!({"device_list": 42}));
            }
            Answer::Result(mesh::device_list(&config.nodes, config.mac_style, &[]))
        }
        ("admin/device", "mode") if read => Answer::Result(if config.access_point {
            // The AP values were never captured (deco.md §9); the bridge does not depend on them.
            json!({"sysmode": "AP", "workmode": "AP"})
        } else {
            json!({"sysmode": "Router", "workmode": "Router"})
        }),
        ("admin/network", "performance") if read => Answer::Result(mesh::performance(now)),
        ("admin/network", "wan_ipv4") if read => Answer::Result(if config.access_point {
            mesh::wan_ipv4_access_point(&config.wan)
        } else {
            mesh::wan_ipv4(&config.wan)
        }),
        ("admin/network", "internet") if read => Answer::Result(json!({
            "ipv4": {"connect_type": "dynamic_ip", "dial_status": "connected", "inet_status": "online", "error_code": 0},
            "link_status": "up"
        })),
        ("admin/wireless", "wlan") if read => Answer::Result(mesh::wlan()),
        ("admin/system", "logout") if operation == "logout" || operation == "write" => Answer::Result(json!({})),
        ("admin/client", "client_list" | "traffic_stat")
        | ("admin/device", "device_list" | "mode")
        | ("admin/network", "performance" | "wan_ipv4" | "internet")
        | ("admin/wireless", "wlan")
        | ("admin/system", "logout") => unknown_op,
        _ => Answer::NotFound,
    }
}

/// `node`: `None` for the whole mesh; `Some(None)` for a MAC that is no node.
fn client_entries(
    config: &super::EmulatorConfig,
    state: &mut State,
    now: i64,
    node: Option<Option<usize>>,
) -> Vec<Value> {
    let second = now.div_euclid(1000);
    let nodes = config.nodes.len();
    let zero = state.faults.zero_speeds;
    let mut list = Vec::new();
    for client in &mut state.clients {
        client.advance(now);
        if let Some(wanted) = node {
            let here = client.node_at(second, nodes);
            if wanted != Some(here) || !client.online_at(second) {
                continue;
            }
        }
        if let Some(entry) = client.entry(now, config.speed_unit, zero) {
            list.push(entry);
        }
    }
    list
}

fn encrypt(aes: &AesSession, doc: &Value, garbage: Option<Garbage>) -> Reply {
    let data = match garbage {
        Some(Garbage::Html) => {
            return Reply::Html(StatusCode::OK, "<html><body>Deco is busy</body></html>");
        }
        Some(Garbage::BadBase64) => "%%% not base64 %%%".to_owned(),
        Some(Garbage::WrongKey) => AesSession::generate().encrypt_b64(doc.to_string().as_bytes()),
        Some(Garbage::NotJsonInside) => aes.encrypt_b64(b"this is not JSON"),
        Some(Garbage::WrongShape) | None => aes.encrypt_b64(doc.to_string().as_bytes()),
    };
    Reply::json(json!({ "data": data }))
}

fn session_gone(style: SessionGone) -> Reply {
    match style {
        SessionGone::Forbidden => Reply::Html(StatusCode::FORBIDDEN, "<html>403 Forbidden</html>"),
        SessionGone::EmptyData => Reply::json(json!({"data": ""})),
    }
}

/// The cookie value after `sysauth=`, up to the first `;` (tplinkrouterc6u echoes
/// `sysauth=<v>; path=/cgi-bin/luci`).
fn sysauth(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let start = v.find("sysauth=")? + "sysauth=".len();
            let value = v[start..].split(';').next()?.trim().trim_matches('"');
            (!value.is_empty()).then(|| value.to_owned())
        })
}

/// `operation` of a plain JSON body (`keys`/`auth` from HA-style clients).
fn plain_operation(body: &str) -> Option<String> {
    lenient_json(body.as_bytes())
        .ok()?
        .get("operation")?
        .as_str()
        .map(str::to_owned)
}

fn redact_stok(uri: &Uri) -> String {
    let target = uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    match target.strip_prefix(PREFIX) {
        Some(rest) => match rest.split_once('/') {
            Some((stok, tail)) if !stok.is_empty() => format!("{PREFIX}<stok>/{tail}"),
            _ => target,
        },
        None => target,
    }
}
