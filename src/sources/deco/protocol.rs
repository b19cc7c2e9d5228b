//! The wire format around the crypto: URLs, the `sign=…&data=…` body, the `{"data": …}`
//! reply, and reading decrypted JSON leniently (deco.md §1, §3). Shared with the emulator.

use serde_json::Value;

use super::crypto::{AesSession, CryptoError, RsaKey, sign_seq, sign_text};

/// One API call: controller path and form, e.g. `admin/client` + `client_list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    pub path: &'static str,
    pub form: &'static str,
}

impl Endpoint {
    pub const KEYS: Self = Self::new("login", "keys");
    pub const AUTH: Self = Self::new("login", "auth");
    pub const LOGIN: Self = Self::new("login", "login");
    pub const CLIENT_LIST: Self = Self::new("admin/client", "client_list");
    pub const DEVICE_LIST: Self = Self::new("admin/device", "device_list");
    pub const MODE: Self = Self::new("admin/device", "mode");
    pub const PERFORMANCE: Self = Self::new("admin/network", "performance");
    pub const WAN_IPV4: Self = Self::new("admin/network", "wan_ipv4");
    pub const LOGOUT: Self = Self::new("admin/system", "logout");

    pub const fn new(path: &'static str, form: &'static str) -> Self {
        Self { path, form }
    }

    /// `/cgi-bin/luci/;stok=<stok>/<path>?form=<form>`; the `;stok=` segment is sent raw.
    pub fn url(&self, base: &str, stok: &str) -> String {
        format!("{base}/cgi-bin/luci/;stok={stok}/{}?form={}", self.path, self.form)
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}?form={}", self.path, self.form)
    }
}

/// Builds the encrypted request body. `with_key` puts `k` and `i` in the signature (required
/// on login, accepted on every later call).
pub fn request_body(
    aes: &AesSession,
    sign_key: &RsaKey,
    hash: &str,
    seq: u64,
    with_key: bool,
    json: &str,
) -> Result<String, CryptoError> {
    let data = aes.encrypt_b64(json.as_bytes());
    let s = sign_seq(seq, data.len());
    let sign = sign_key.encrypt_hex(sign_text(with_key.then_some(aes), hash, s).as_bytes())?;
    Ok(format!("sign={sign}&data={}", crate::percent::encode(&data)))
}

/// Parses `a=b&c=d` (form or query). `+` is a space; invalid escapes are kept literally.
pub fn form_decode(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (crate::percent::decode(k), crate::percent::decode(v))
        })
        .collect()
}

/// Decrypted bytes to JSON, leniently: client names can hold invalid UTF-8 (X60, HA #374), and
/// some firmware writes a bare `NaN` (tplink-deco-api's P9 probe). Both must not fail a poll.
pub fn lenient_json(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    serde_json::from_str(&lenient_text(bytes))
}

/// The text [`lenient_json`] parses; borrowed from `bytes` when it is UTF-8 without `NaN`.
pub fn lenient_text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match String::from_utf8_lossy(bytes) {
        std::borrow::Cow::Borrowed(text) => replace_nan(text),
        std::borrow::Cow::Owned(text) => replace_nan(&text).into_owned().into(),
    }
}

/// Replaces `NaN` and `Number.NaN` outside strings with `null`.
fn replace_nan(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("NaN") {
        return text.into();
    }
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            rest = &rest[c.len_utf8()..];
            continue;
        }
        if let Some(after) = rest.strip_prefix("Number.NaN").or_else(|| rest.strip_prefix("NaN")) {
            out.push_str("null");
            rest = after;
            continue;
        }
        if c == '"' {
            in_string = true;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out.into()
}

/// What a call's decrypted reply is read into: the `result` tree ([`Value`]), or a typed reading
/// of one form (`clientlist::ClientListReply`).
pub trait ReplyForm: Sized {
    /// The reply's `error_code` and its reading, from the decrypted text ([`lenient_text`]).
    /// The error is `serde_json`'s for a `Value` of that text.
    fn read(text: &str) -> Result<(ErrorCode, Self), serde_json::Error>;
}

impl ReplyForm for Value {
    /// `result` (taken out of the reply, not copied); `{}` when there is none.
    fn read(text: &str) -> Result<(ErrorCode, Self), serde_json::Error> {
        let doc: Value = serde_json::from_str(text)?;
        let code = ErrorCode::of(&doc);
        let result = match doc {
            Value::Object(mut map) => map.remove("result"),
            _ => None,
        };
        Ok((code, result.unwrap_or_else(|| Value::Object(serde_json::Map::new()))))
    }
}

/// `error_code` as the Deco writes it: a number, a numeric string, or a word (`"timeout"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCode {
    Ok,
    Code(i64),
    Text(String),
    Missing,
}

impl ErrorCode {
    pub fn of(doc: &Value) -> Self {
        Self::from_member(doc.get("error_code"))
    }

    /// From the `error_code` member itself (`None`: the reply has none).
    pub fn from_member(member: Option<&Value>) -> Self {
        match member {
            None | Some(Value::Null) => Self::Missing,
            Some(Value::Number(n)) => match n.as_i64() {
                Some(0) => Self::Ok,
                Some(c) => Self::Code(c),
                None => Self::Text(n.to_string()),
            },
            Some(Value::String(s)) => match s.trim().parse::<i64>() {
                Ok(0) => Self::Ok,
                Ok(c) => Self::Code(c),
                Err(_) => Self::Text(s.clone()),
            },
            Some(other) => Self::Text(other.to_string()),
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ok => f.write_str("0"),
            Self::Code(c) => write!(f, "{c}"),
            Self::Text(t) => write!(f, "\"{}\"", t.chars().take(40).collect::<String>()),
            Self::Missing => f.write_str("missing"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_the_stok_segment_raw() {
        assert_eq!(
            Endpoint::CLIENT_LIST.url("http://192.168.68.1", "abc"),
            "http://192.168.68.1/cgi-bin/luci/;stok=abc/admin/client?form=client_list"
        );
        assert_eq!(
            Endpoint::KEYS.url("https://h:8443", ""),
            "https://h:8443/cgi-bin/luci/;stok=/login?form=keys"
        );
        assert_eq!(Endpoint::PERFORMANCE.to_string(), "admin/network?form=performance");
    }

    #[test]
    fn form_encoding_round_trips_base64() {
        let data = "mRPPuc/26mfwKws/pJhpNBE4JuRtjbAI7FI/9E+r9/w=";
        let encoded = crate::percent::encode(data);
        assert!(!encoded.contains(['+', '/', '=']), "{encoded}");
        let fields = form_decode(&format!("sign=00ff&data={encoded}"));
        assert_eq!(
            fields,
            vec![("sign".into(), "00ff".into()), ("data".into(), data.into())]
        );
        assert_eq!(
            form_decode("a=1+2&b&c=%zz%4"),
            vec![
                ("a".into(), "1 2".into()),
                ("b".into(), "".into()),
                ("c".into(), "%zz%4".into())
            ]
        );
    }

    #[test]
    fn request_body_is_signed_over_the_data_length() {
        let aes = AesSession::new("1415950173028918", "5652578606663031").unwrap();
        let key = RsaKey::from_hex(
            "b0412ae1d796060a0b2d5103159ae2cee6271ea2eed4b3f4e2428b38773db226ed1198d547d60926aea11de19270305a4c7ae924ebfb9b2ffef7588aedebcced",
            "010001",
        )
        .unwrap();
        let body = request_body(&aes, &key, "h", 1, false, r#"{"operation":"read"}"#).unwrap();
        let fields = form_decode(&body);
        assert_eq!(fields[0].0, "sign");
        assert_eq!(fields[0].1.len(), 128);
        assert_eq!(
            fields[1],
            ("data".into(), "mRPPuc/26mfwKws/pJhpNBE4JuRtjbAI7FI/9E+r9/w=".into())
        );
        let login = request_body(&aes, &key, "e3274be5c857fb42ab72d786e281b4b8", 1, true, "{}").unwrap();
        assert_eq!(form_decode(&login)[0].1.len(), 256);
    }

    #[test]
    fn lenient_json_survives_bad_utf8_and_nan() {
        let mut bytes = br#"{"name":"caf"#.to_vec();
        bytes.extend([0xff, 0xfe]);
        bytes.extend(br#"","v":NaN,"w":Number.NaN,"s":"NaN stays"}"#);
        let v = lenient_json(&bytes).unwrap();
        assert!(v["name"].as_str().unwrap().starts_with("caf"));
        assert_eq!(v["v"], Value::Null);
        assert_eq!(v["w"], Value::Null);
        assert_eq!(v["s"], "NaN stays");
        assert!(lenient_json(b"<html>").is_err());
    }

    #[test]
    fn error_codes_in_every_spelling() {
        let code = |s: &str| ErrorCode::of(&serde_json::from_str(s).unwrap());
        assert_eq!(code(r#"{"error_code":0}"#), ErrorCode::Ok);
        assert_eq!(code(r#"{"error_code":"0"}"#), ErrorCode::Ok);
        assert_eq!(code(r#"{"error_code":-5002}"#), ErrorCode::Code(-5002));
        assert_eq!(code(r#"{"error_code":"-5003"}"#), ErrorCode::Code(-5003));
        assert_eq!(code(r#"{"error_code":"timeout"}"#), ErrorCode::Text("timeout".into()));
        assert_eq!(code(r#"{"result":{}}"#), ErrorCode::Missing);
    }
}
