//! What every config table is made of, below both `config` (which assembles the file) and the
//! source folders (which declare their own tables): MAC lists, secrets, durations, and the
//! checks tables share. A leaf: it imports nothing of the bridge's but `model`.

pub mod duration;
mod macs;
mod secret;

use std::path::Path;
use std::time::Duration;

pub use macs::MacList;
pub use secret::Secret;

use crate::model::DeviceId;

/// A `(key, message)` problem in a table, turned into a `ConfigError` (which also names the
/// file or the environment variable) by `config`.
pub type TableError = (String, String);

/// Device ids the bridge keeps for itself.
pub const RESERVED_IDS: [&str; 2] = ["bridge", "host"];

pub fn check_source_name(name: &str) -> Result<(), String> {
    if DeviceId::new(name).is_err() {
        return Err(format!(
            "`{name}` is not a valid name: use lower-case letters, digits and `_` (so that environment overrides can reach it)"
        ));
    }
    if RESERVED_IDS.contains(&name) {
        return Err(format!("`{name}` is reserved"));
    }
    Ok(())
}

/// A router's base URL: `http(s)://host[:port]`, nothing after it.
pub fn check_router_url(text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err("is required, e.g. \"http://192.168.68.1\"".into());
    }
    let url = reqwest::Url::parse(text.trim())
        .map_err(|e| format!("`{text}` is not a URL ({e}); write it like http://192.168.68.1"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{text}`: use http:// or https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{text}` has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials in the URL are not supported; use the password key".into());
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(format!("`{text}` has a path; the URL names only scheme, host and port"));
    }
    Ok(())
}

pub fn check_interval(value: Duration, min_secs: u64) -> Result<(), String> {
    if value < Duration::from_secs(min_secs) {
        Err(format!("must be at least {min_secs}s"))
    } else {
        Ok(())
    }
}

/// A `password` and its `password_file` twin (Docker secrets): the file wins and is read now, so
/// a missing secret fails at start-up, naming the key (`<table>.password_file`).
pub fn read_password_file(password: &mut Option<Secret>, file: Option<&Path>, table: &str) -> Result<(), TableError> {
    let Some(file) = file else { return Ok(()) };
    let key = format!("{table}.password_file");
    if password.is_some() {
        return Err((key, "set either password or password_file, not both".into()));
    }
    let text =
        std::fs::read_to_string(file).map_err(|e| (key.clone(), format!("cannot read {}: {e}", file.display())))?;
    // Secret files usually end with a newline that is not part of the password.
    let value = text.strip_suffix('\n').unwrap_or(&text);
    let value = value.strip_suffix('\r').unwrap_or(value);
    *password = Some(Secret::new(value));
    Ok(())
}
