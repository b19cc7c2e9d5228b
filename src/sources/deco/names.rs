//! Client and node names: the Deco sends them as base64 of UTF-8 (deco.md §5.1). Real lists
//! hold empty names, strings that are not base64, and bytes that are not UTF-8 (HA #122).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

/// The display name inside a base64 `name`, or `None` when nothing readable is left. Text that
/// is not base64 at all is taken as it is (some firmware sends plain names).
pub fn decode_name(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    let bytes = STANDARD
        .decode(raw)
        .or_else(|_| STANDARD_NO_PAD.decode(raw.trim_end_matches('=')));
    let text = match bytes {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => raw.to_owned(),
    };
    clean(&text)
}

/// Drops control characters and U+FFFD (what invalid UTF-8 became), and surrounding blanks.
fn clean(text: &str) -> Option<String> {
    let cleaned: String = text
        .chars()
        .filter(|c| !c.is_control() && *c != char::REPLACEMENT_CHARACTER)
        .collect();
    let cleaned = cleaned.trim();
    (!cleaned.is_empty()).then(|| cleaned.to_owned())
}

/// Node nicknames are room keys on older firmware (`living_room`) and display text on newer
/// (`Living Room`); keys become words.
pub fn humanize_nickname(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    let is_key = raw
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !is_key {
        return clean(raw);
    }
    let words: Vec<String> = raw
        .split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect();
    clean(&words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_base64_names() {
        assert_eq!(decode_name("d2lyZWxlc3Mx").as_deref(), Some("wireless1"));
        assert_eq!(decode_name("UGhvbmU=").as_deref(), Some("Phone"));
        assert_eq!(decode_name("UGhvbmU").as_deref(), Some("Phone"), "no padding");
        // "Küche" in UTF-8.
        assert_eq!(decode_name("S8O8Y2hl").as_deref(), Some("Küche"));
    }

    #[test]
    fn empty_invalid_and_non_utf8_names() {
        assert_eq!(decode_name(""), None);
        assert_eq!(decode_name("   "), None);
        // Not base64: taken literally.
        assert_eq!(decode_name("My TV!").as_deref(), Some("My TV!"));
        // base64 of b"TV\xff\xfe": the invalid bytes are dropped, the rest is kept.
        assert_eq!(decode_name("VFb//g==").as_deref(), Some("TV"));
        // base64 of b"\xff\xfe": nothing readable.
        assert_eq!(decode_name("//4="), None);
        // base64 of "\n\t": only control characters.
        assert_eq!(decode_name("Cgk="), None);
    }

    #[test]
    fn nicknames() {
        assert_eq!(humanize_nickname("living_room").as_deref(), Some("Living Room"));
        assert_eq!(humanize_nickname("Kids").as_deref(), Some("Kids"));
        assert_eq!(humanize_nickname("bedroom").as_deref(), Some("Bedroom"));
        assert_eq!(humanize_nickname(""), None);
    }
}
