//! `appGet.cgi` replies are JSON-like but not always JSON (shared/protocols/asus.md §4.2): an
//! unknown hook leaves an empty member (`{ ,`, `,,`, `, }`), a key can have no value, strings
//! can hold raw control characters, pages start with a BOM, and keys repeat (dual WAN). This
//! module turns such a body into a JSON value; for repeated keys the last one wins, as in the
//! router's own web UI.

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a hook reply: {0}")]
pub struct HookParseError(pub String);

/// Repairs the known quirks; the output is valid JSON whenever the input was JSON-like.
pub fn clean(text: &str) -> String {
    let text = text.trim_start_matches('\u{feff}');
    let mut out = String::with_capacity(text.len() + 8);
    let mut in_string = false;
    let mut escaped = false;
    // The last non-whitespace character written outside strings.
    let mut last = ' ';
    for c in text.chars() {
        if in_string {
            if escaped {
                escaped = false;
                out.push(c);
            } else if c == '\\' {
                escaped = true;
                out.push(c);
            } else if c == '"' {
                in_string = false;
                out.push(c);
                last = '"';
            } else if (c as u32) < 0x20 {
                out.push_str(&format!("\\u{:04x}", c as u32));
            } else {
                out.push(c);
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            ',' if matches!(last, '{' | '[' | ',') => {} // an empty member
            ',' | '}' if last == ':' => {
                out.push_str("null");
                out.push(c);
                last = c;
            }
            '}' | ']' if last == ',' => {
                if let Some(pos) = out.rfind(',') {
                    out.truncate(pos);
                }
                out.push(c);
                last = c;
            }
            c if c.is_whitespace() => out.push(c),
            _ => {
                out.push(c);
                last = c;
            }
        }
    }
    out
}

/// Parses a hook reply into its top-level object.
pub fn parse_object(text: &str) -> Result<Map<String, Value>, HookParseError> {
    let cleaned = clean(text);
    match serde_json::from_str::<Value>(&cleaned) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(HookParseError(format!("expected an object, got {}", kind(&other)))),
        Err(e) => Err(HookParseError(format!("{e} near `{}`", excerpt(&cleaned, e.column())))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn excerpt(text: &str, column: usize) -> String {
    let line = text.lines().last().unwrap_or("");
    let start = column.saturating_sub(30);
    line.chars().skip(start).take(60).collect()
}

/// A hook value as text: strings as they are, numbers printed (`"get_wan_unit":0`).
pub fn text(map: &Map<String, Value>, key: &str) -> Option<String> {
    match map.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repairs_empty_members_and_missing_values() {
        let map = parse_object("\u{feff}{ , \"a\":\"1\",, \"b\": , \"c\":\"x\", }").unwrap();
        assert_eq!(map["a"], "1");
        assert_eq!(map["b"], Value::Null);
        assert_eq!(map["c"], "x");
    }

    #[test]
    fn last_duplicate_key_wins() {
        let map = parse_object("{\"k\":\"first\",\"k\":\"second\"}").unwrap();
        assert_eq!(map["k"], "second");
    }

    #[test]
    fn escapes_control_characters_inside_strings_only() {
        let map = parse_object("{\"name\":\"tab\there\",\n\"x\":\"1\"}").unwrap();
        assert_eq!(map["name"], "tab\there");
        assert_eq!(map["x"], "1");
    }

    #[test]
    fn leaves_commas_inside_strings_alone() {
        let map = parse_object(r#"{"u":"Mon, 13 May 2024 {,}", "v":"a\"b,"}"#).unwrap();
        assert_eq!(map["u"], "Mon, 13 May 2024 {,}");
        assert_eq!(map["v"], "a\"b,");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in ["", "<html>", "{\"a\":", "[1,2]", "{\"a\":\"1\"", "\u{0}\u{1}"] {
            assert!(parse_object(bad).is_err(), "{bad:?}");
        }
    }
}
