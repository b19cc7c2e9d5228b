//! `appGet.cgi` replies are JSON-like but not always JSON (shared/protocols/asus.md §4.2): an
//! unknown hook leaves an empty member (`{ ,`, `,,`, `, }`), a key can have no value, strings
//! can hold raw control characters, pages start with a BOM, and keys repeat (dual WAN). This
//! module turns such a body into a JSON value; for repeated keys the last one wins, as in the
//! router's own web UI. (The poll reply itself is read without the tree, in [`super::reply`],
//! on the same repaired text.)

use std::borrow::Cow;

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a hook reply: {0}")]
pub struct HookParseError(pub String);

/// Repairs the known quirks; the output is valid JSON whenever the input was JSON-like. A reply
/// without quirks comes back borrowed, and one with quirks is copied in runs between repairs
/// (the profile of a 5 000-client poll had this loop pushing one `char` at a time).
pub fn clean(text: &str) -> Cow<'_, str> {
    let text = text.trim_start_matches('\u{feff}');
    let bytes = text.as_bytes();
    // The repaired text up to `from`; from `from` on the input needs no repair so far. Every
    // position a repair happens at is an ASCII byte, so `from` is always a char boundary.
    let mut out: Option<String> = None;
    let mut from = 0;
    let mut in_string = false;
    let mut escaped = false;
    // The last non-whitespace character written outside strings (non-ASCII ones as `NOT_ASCII`;
    // only `{ [ , :` are ever compared).
    const NOT_ASCII: u8 = 0xff;
    let mut last = b' ';
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if in_string {
            // Bytes of multi-byte characters are all >= 0x80: none of these match them. Most of
            // a reply is string text: step over it to the next byte that matters.
            if !escaped && b != b'\\' && b != b'"' && b >= 0x20 {
                i += bytes[i..]
                    .iter()
                    .position(|&b| b == b'\\' || b == b'"' || b < 0x20)
                    .unwrap_or(bytes.len() - i);
                continue;
            }
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
                last = b'"';
            } else if b < 0x20 {
                let o = repaired(&mut out, text, from, i);
                o.push_str("\\u00");
                o.push(char::from(HEX[usize::from(b >> 4)]));
                o.push(char::from(HEX[usize::from(b & 0x0f)]));
                from = i + 1;
            }
            i += 1;
            continue;
        }
        match b {
            b'"' => in_string = true,
            // An empty member: dropped.
            b',' if matches!(last, b'{' | b'[' | b',') => {
                repaired(&mut out, text, from, i);
                from = i + 1;
            }
            // A key without a value: `null`, and the `,` or `}` stays.
            b',' | b'}' if last == b':' => {
                repaired(&mut out, text, from, i).push_str("null");
                from = i;
                last = b;
            }
            // A trailing comma: dropped with whatever whitespace followed it.
            b'}' | b']' if last == b',' => {
                let o = repaired(&mut out, text, from, i);
                if let Some(pos) = o.rfind(',') {
                    o.truncate(pos);
                }
                from = i;
                last = b;
            }
            b if b.is_ascii() => {
                if !char::from(b).is_whitespace() {
                    last = b;
                }
            }
            _ => {
                let c = text.get(i..).and_then(|rest| rest.chars().next()).unwrap_or(' ');
                if !c.is_whitespace() {
                    last = NOT_ASCII;
                }
                i += c.len_utf8();
                continue;
            }
        }
        i += 1;
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut o) => {
            o.push_str(text.get(from..).unwrap_or_default());
            Cow::Owned(o)
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The repaired output so far, with the unchanged input `text[from..upto]` appended.
fn repaired<'o>(out: &'o mut Option<String>, text: &str, from: usize, upto: usize) -> &'o mut String {
    let o = out.get_or_insert_with(|| String::with_capacity(text.len() + 16));
    o.push_str(text.get(from..upto).unwrap_or_default());
    o
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
    fn repairs_like_the_char_by_char_reference() {
        let mut inputs: Vec<String> = [
            "",
            "{}",
            "\u{feff}\u{feff}{ , \"a\":\"1\",, \"b\": , \"c\":\"x\", }",
            "{\"a\":[1,2,],\"b\":{,},\"c\":\"t\u{1}\\\u{2}\u{1f}\"}",
            "{\"a\":\u{a0},\"b\":\u{2028}}",
            "{\"é\":\"ü\",\u{3000},\"x\":\u{e9},}",
            "{\"a\":,}",
            "[,,1,,]",
            "{\"a\":\"\\\"\u{7}\"",
            ",}",
            ":}",
            "{\"k\":\"open",
            "\u{b},\u{c}\u{85}:,",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Every short string over the characters that matter, and a real reply.
        let alphabet = [
            '{', '}', '[', ']', ',', ':', '"', '\\', '\u{1}', ' ', 'é', '\u{a0}', 'a',
        ];
        for len in 1..=4u32 {
            for n in 0..alphabet.len().pow(len) {
                let mut rest = n;
                let mut s = String::new();
                for _ in 0..len {
                    s.push(alphabet[rest % alphabet.len()]);
                    rest /= alphabet.len();
                }
                inputs.push(s);
            }
        }
        for input in &inputs {
            assert_eq!(clean(input), reference_clean(input), "{input:?}");
        }
        let plain = "{\"a\":\"1\",\"b\":[1,2]}";
        assert!(
            matches!(clean(plain), Cow::Borrowed(_)),
            "nothing to repair, nothing copied"
        );
        assert!(matches!(clean("\u{feff}{}"), Cow::Borrowed("{}")));
    }

    /// The char-by-char repair this module had before issue 11: [`clean`] must give the same
    /// text for every input.
    fn reference_clean(text: &str) -> String {
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

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in ["", "<html>", "{\"a\":", "[1,2]", "{\"a\":\"1\"", "\u{0}\u{1}"] {
            assert!(parse_object(bad).is_err(), "{bad:?}");
        }
    }
}
