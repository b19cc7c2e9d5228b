//! The reply envelope of every encrypted call (shared/protocols/deco.md §3): `{"data":
//! "<base64>"}` around the AES-encrypted JSON, or a plain `error_code` before decryption. The
//! usual reply is read without copying its base64 text (issue 11: 2 MB per poll for 5 000
//! clients); anything else is read as a tree, for the message it has always given.

use serde_json::Value;

use super::crypto::AesSession;
use super::protocol::{Endpoint, ErrorCode, lenient_json};
use super::session::DecoError;
use crate::sources::scalar::{FromObject, Key, ObjectOrNot, Scalar, Skip};

/// `{"data": "<base64>"}` → decrypted JSON. Empty `data` is the Deco's "session gone".
/// Crate-visible for the fuzz entry points (src/fuzzing).
pub(crate) fn open_reply(endpoint: Endpoint, body: &[u8], aes: &AesSession) -> Result<Value, DecoError> {
    let plain = decrypt_reply(endpoint, body, aes)?;
    lenient_json(&plain).map_err(|e| DecoError::invalid(endpoint, format!("the decrypted reply is not JSON: {e}")))
}

/// `{"data": "<base64>"}` → the decrypted bytes.
pub(crate) fn decrypt_reply(endpoint: Endpoint, body: &[u8], aes: &AesSession) -> Result<Vec<u8>, DecoError> {
    let decrypt = |data: &str| {
        aes.decrypt_b64(data)
            .map_err(|e| DecoError::invalid(endpoint, format!("the reply does not decrypt: {e}")))
    };
    if let Ok(ObjectOrNot(Some(Envelope(Some(Scalar::Str(data)))))) = serde_json::from_slice(body)
        && !data.is_empty()
    {
        return decrypt(&data);
    }
    let outer: Value = serde_json::from_slice(body).map_err(|_| DecoError::invalid(endpoint, not_json(body)))?;
    match outer.get("data") {
        Some(Value::String(data)) if data.is_empty() => Err(DecoError::SessionGone {
            endpoint,
            why: "empty data",
        }),
        Some(Value::String(data)) => decrypt(data),
        _ => match ErrorCode::of(&outer) {
            ErrorCode::Ok | ErrorCode::Missing => {
                Err(DecoError::invalid(endpoint, "the reply has no encrypted data field"))
            }
            code => Err(DecoError::Refused {
                endpoint,
                code,
                hint: " (before decryption)",
            }),
        },
    }
}

/// The reply's (last) `data` member, borrowed.
struct Envelope<'a>(Option<Scalar<'a>>);

impl<'de> FromObject<'de> for Envelope<'de> {
    fn from_object<A: serde::de::MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut data = None;
        while let Some(Key(key)) = map.next_key::<Key>()? {
            if key == "data" {
                data = Some(map.next_value()?);
            } else {
                map.next_value::<Skip>()?;
            }
        }
        Ok(Self(data))
    }
}

/// A short, printable description of a body that is not JSON.
pub(super) fn not_json(body: &[u8]) -> String {
    if body.is_empty() {
        return "the reply is empty".into();
    }
    let start: String = String::from_utf8_lossy(&body[..body.len().min(40)])
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    format!("the reply is not JSON ({} bytes, starting `{start}`)", body.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_data_member_counts_and_escapes_are_read() {
        let aes = AesSession::new("1415950173028918", "5652578606663031").unwrap();
        let ep = Endpoint::CLIENT_LIST;
        let plain = br#"{"error_code":0,"result":{"client_list":[]}}"#;
        let data = aes.encrypt_b64(plain);
        // JSON writers that escape `/` (Lua's cjson does): the string is unescaped first.
        let escaped = data.replace('/', "\\/");
        for body in [
            format!(r#"{{"data":"AAAA","data":"{data}"}}"#),
            format!(r#"{{"x":[{{"data":1}}],"data":"{escaped}"}}"#),
        ] {
            assert_eq!(decrypt_reply(ep, body.as_bytes(), &aes).unwrap(), plain, "{body}");
        }
        let later = |tail: &str| decrypt_reply(ep, format!(r#"{{"data":"{data}",{tail}}}"#).as_bytes(), &aes);
        assert!(matches!(later(r#""data":"""#), Err(DecoError::SessionGone { .. })));
        assert!(matches!(
            later(r#""data":5,"error_code":-1"#),
            Err(DecoError::Refused { .. })
        ));
        assert!(matches!(later(r#""data":null"#), Err(DecoError::Invalid { .. })));
        let junk = decrypt_reply(ep, format!(r#"{{"data":"{data}"}} junk"#).as_bytes(), &aes).unwrap_err();
        assert!(junk.to_string().contains("the reply is not JSON"), "{junk}");
    }
}
