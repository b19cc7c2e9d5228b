//! Requests on `<base>/bridge/request/<command>`, answered on `<base>/bridge/response/<command>`
//! with `{"status","data","error","transaction"}` (zigbee2mqtt's convention, shared/design.md).
//!
//! Parsing and the answer's shape are pure functions; what a command does to the core lives in
//! [`Core::on_request`]. Bad JSON and unknown commands get an error response naming the problem.
//!
//! Any broker user can send requests (issue 21), so each has limits: a `transaction` of at most
//! [`TRANSACTION_MAX`] bytes is echoed (a longer one gets an error and is not), a device name is
//! 1 to [`NAME_MAX`] characters (Home Assistant's own limit), and `restart` runs at most once a
//! minute. The size of a request and how many arrive are bounded before this (publish/intake.rs).

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::Core;
use crate::household::Household;
use crate::model::DeviceId;

pub const COMMANDS: [&str; 6] = [
    "poll",
    "device/rename",
    "device/remove",
    "health_check",
    "restart",
    "permit_join",
];
const NAMES_FILE: &str = "names.json";
/// The largest `transaction` echoed back (as JSON text).
pub const TRANSACTION_MAX: usize = 256;
/// Home Assistant's limit for a device or entity name.
pub const NAME_MAX: usize = 255;
const RESTART_EVERY: Duration = Duration::from_secs(60);

/// When this process last accepted `restart`: a restart builds a new core, the process stays.
static LAST_RESTART: Mutex<Option<Instant>> = Mutex::new(None);

/// Whether a restart may happen now (and if so, remembers it).
fn restart_allowed(now: Instant) -> Result<(), String> {
    let mut last = LAST_RESTART.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(at) = *last
        && now.duration_since(at) < RESTART_EVERY
    {
        return Err(format!(
            "restarted {} s ago; `restart` runs at most once a minute",
            now.duration_since(at).as_secs()
        ));
    }
    *last = Some(now);
    Ok(())
}

/// What the run loop must do after answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    None,
    PollNow,
    Restart,
}

/// One request: its command, its JSON object (or why there is none), its transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub command: String,
    pub body: Result<Map<String, Value>, String>,
    pub transaction: Option<Value>,
}

/// `<base>/bridge/request/<command>` → the request, or `None` for other topics.
pub fn parse(base: &str, topic: &str, payload: &[u8]) -> Option<Request> {
    let command = topic.strip_prefix(base)?.strip_prefix("/bridge/request/")?.to_owned();
    let text = String::from_utf8_lossy(payload);
    let body = if text.trim().is_empty() {
        Ok(Map::new())
    } else {
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(other) => Err(format!("request must be a JSON object, got {other}")),
            Err(e) => Err(format!("invalid JSON: {e}")),
        }
    };
    let mut body = body;
    let mut transaction = body.as_ref().ok().and_then(|m| m.get("transaction").cloned());
    if transaction
        .as_ref()
        .is_some_and(|t| t.to_string().len() > TRANSACTION_MAX)
    {
        transaction = None;
        body = Err(format!(
            "`transaction` is longer than {TRANSACTION_MAX} bytes; it is not echoed"
        ));
    }
    Some(Request {
        command,
        body,
        transaction,
    })
}

/// A request too large to read (publish/intake.rs): answered with an error, nothing echoed.
pub fn too_large(base: &str, topic: &str, size: usize) -> Option<Request> {
    let command = topic.strip_prefix(base)?.strip_prefix("/bridge/request/")?.to_owned();
    Some(Request {
        command,
        body: Err(format!(
            "request of {size} bytes is larger than the bridge reads; ignored"
        )),
        transaction: None,
    })
}

pub fn response(result: Result<Value, String>, transaction: Option<Value>) -> Value {
    let mut out = match result {
        Ok(data) => json!({"status": "ok", "data": data}),
        Err(error) => json!({"status": "error", "data": {}, "error": error}),
    };
    if let Some(t) = transaction {
        out["transaction"] = t;
    }
    out
}

fn device_id(body: &Map<String, Value>) -> Result<DeviceId, String> {
    let id = body
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| "missing string field `id`".to_owned())?;
    DeviceId::new(id).map_err(|e| e.to_string())
}

/// Names given by `device/rename` survive restarts in their own small file.
pub fn restore_names(household: &mut Household, state_dir: &Path) {
    let path = state_dir.join(NAMES_FILE);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return;
    };
    match serde_json::from_str::<std::collections::BTreeMap<DeviceId, String>>(&text) {
        Ok(names) => {
            for (id, name) in names {
                household.rename(&id, &name);
            }
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "Unreadable device names file; renames are not applied.")
        }
    }
}

pub(super) fn save_names(household: &Household, state_dir: &Path) -> Result<(), String> {
    let path = state_dir.join(NAMES_FILE);
    let tmp = state_dir.join(format!("{NAMES_FILE}.tmp"));
    let text = serde_json::to_string_pretty(household.renamed()).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(state_dir)
        .and_then(|()| std::fs::write(&tmp, text))
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| format!("cannot save {}: {e}", path.display()))
}

impl Core {
    /// Answers one request; the response goes out on `bridge/response/<command>`.
    pub(super) fn on_request(&mut self, request: Request) -> (String, Value, Action) {
        let topic = format!("{}/bridge/response/{}", self.topics.base, request.command);
        let (result, action) = match request.body {
            Err(e) => (Err(e), Action::None),
            Ok(body) => self.execute(&request.command, &body),
        };
        match &result {
            Ok(_) => tracing::info!(command = %request.command, "Command done."),
            Err(e) => tracing::warn!(command = %request.command, error = %e, "Command refused."),
        }
        (topic, response(result, request.transaction), action)
    }

    fn execute(&mut self, command: &str, body: &Map<String, Value>) -> (Result<Value, String>, Action) {
        match command {
            "poll" => {
                let sources: Vec<&String> = self.statuses.keys().collect();
                (Ok(json!({"sources": sources})), Action::PollNow)
            }
            "health_check" => {
                let failing: Vec<&String> = self
                    .statuses
                    .iter()
                    .filter(|(_, s)| s.status == "error")
                    .map(|(n, _)| n)
                    .collect();
                let sources: Map<String, Value> = self
                    .statuses
                    .iter()
                    .map(|(n, s)| (n.clone(), json!(s.status)))
                    .collect();
                (
                    Ok(json!({"healthy": true, "failing_sources": failing, "sources": sources})),
                    Action::None,
                )
            }
            "restart" => match restart_allowed(Instant::now()) {
                Ok(()) => (Ok(json!({})), Action::Restart),
                Err(e) => (Err(e), Action::None),
            },
            "device/rename" => (self.rename(body), Action::None),
            "device/remove" => (self.remove(body), Action::None),
            "permit_join" => (self.permit_join(body), Action::None),
            other => (
                Err(format!("unknown command `{other}`; known: {}", COMMANDS.join(", "))),
                Action::None,
            ),
        }
    }

    fn rename(&mut self, body: &Map<String, Value>) -> Result<Value, String> {
        let id = device_id(body)?;
        let name = body
            .get("name")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| "missing non-empty string field `name`".to_owned())?;
        if name.chars().count() > NAME_MAX {
            return Err(format!(
                "`name` is longer than {NAME_MAX} characters (Home Assistant's limit)"
            ));
        }
        if self.household.device(&id).is_none() {
            return Err(format!("no device `{id}`"));
        }
        self.household.rename(&id, name);
        if self.persist {
            save_names(&self.household, &self.config.settings.bridge.state_dir)?;
        }
        self.render_device(&id);
        self.render_bridge();
        Ok(json!({"id": id.as_str(), "name": name}))
    }

    fn remove(&mut self, body: &Map<String, Value>) -> Result<Value, String> {
        let id = device_id(body)?;
        if self.household.device(&id).is_none() {
            return Err(format!("no device `{id}`"));
        }
        let event = self.drop_device(&id, self.clock.now_ms());
        self.save();
        if self.persist {
            save_names(&self.household, &self.config.settings.bridge.state_dir)?;
        }
        self.render_bridge();
        self.messages.push((self.topics.bridge_event(), event.to_string()));
        Ok(json!({"id": id.as_str()}))
    }

    /// New `bridge/event` messages since the last call (joined, left).
    pub(super) fn collect_events(&mut self) {
        let events = self.events.diff(self.household.devices());
        for event in events {
            self.messages.push((self.topics.bridge_event(), event.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests_and_shapes_responses() {
        let r = parse(
            "b2m",
            "b2m/bridge/request/device/rename",
            br#"{"id":"x","name":"X","transaction":7}"#,
        )
        .unwrap();
        assert_eq!(r.command, "device/rename");
        assert_eq!(r.transaction, Some(json!(7)));
        assert!(parse("b2m", "b2m/bridge/response/poll", b"{}").is_none());
        let empty = parse("b2m", "b2m/bridge/request/poll", b"").unwrap();
        assert_eq!(empty.body, Ok(Map::new()));
        let bad = parse("b2m", "b2m/bridge/request/poll", b"{nope").unwrap();
        assert!(bad.body.unwrap_err().starts_with("invalid JSON"));
        let array = parse("b2m", "b2m/bridge/request/poll", b"[1]").unwrap();
        assert!(array.body.unwrap_err().contains("JSON object"));

        let ok = response(Ok(json!({"a": 1})), Some(json!("t")));
        assert_eq!(ok, json!({"status": "ok", "data": {"a": 1}, "transaction": "t"}));
        let err = response(Err("boom".into()), None);
        assert_eq!(err["status"], "error");
        assert_eq!(err["error"], "boom");
        assert!(err.get("transaction").is_none());
    }

    #[test]
    fn a_long_transaction_is_refused_and_not_echoed() {
        let long = "x".repeat(200_000);
        let r = parse(
            "b2m",
            "b2m/bridge/request/health_check",
            format!(r#"{{"transaction":"{long}"}}"#).as_bytes(),
        )
        .unwrap();
        assert_eq!(r.transaction, None);
        let answer = response(r.body.map(|_| json!({})), r.transaction).to_string();
        assert!(answer.contains("\"status\":\"error\""), "{answer}");
        assert!(answer.len() < 200, "{answer}");
        let fits = "y".repeat(TRANSACTION_MAX - 2);
        let r = parse(
            "b2m",
            "b2m/bridge/request/poll",
            format!(r#"{{"transaction":"{fits}"}}"#).as_bytes(),
        )
        .unwrap();
        assert_eq!(r.transaction, Some(json!(fits)));
    }

    #[test]
    fn restart_runs_at_most_once_a_minute() {
        let t0 = Instant::now();
        assert!(restart_allowed(t0).is_ok());
        assert!(restart_allowed(t0 + Duration::from_secs(59)).is_err());
        assert!(restart_allowed(t0 + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn a_rename_is_one_to_255_characters() {
        use crate::model::{DeviceKind, Observation};
        let dir = tempfile::tempdir().unwrap();
        let clock = crate::clock::ManualClock::new(1_795_000_000_000);
        let mut core = super::super::test_core::core(dir.path(), "", false, clock.clock());
        let mut router = Observation::new(DeviceId::new("home").unwrap(), DeviceKind::Router);
        router.online = Some(true);
        core.take(super::super::test_core::report(vec![router], 1_795_000_000_000));
        let rename = |name: &str| Request {
            command: "device/rename".into(),
            body: Ok(json!({"id": "home", "name": name}).as_object().unwrap().clone()),
            transaction: None,
        };
        let (_, answer, _) = core.on_request(rename(&"n".repeat(300_000)));
        assert_eq!(answer["status"], "error", "{}", &answer.to_string()[..200]);
        assert!(answer.to_string().len() < 300);
        let (_, answer, _) = core.on_request(rename("  "));
        assert_eq!(answer["status"], "error");
        let (_, answer, _) = core.on_request(rename(&"é".repeat(NAME_MAX)));
        assert_eq!(answer["status"], "ok");
        let home = core.household.device(&DeviceId::new("home").unwrap()).unwrap();
        assert_eq!(home.name().chars().count(), NAME_MAX);
    }
}
