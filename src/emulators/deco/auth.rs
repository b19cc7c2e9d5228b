//! The Deco's side of the handshake (deco.md §2, §3, §10): keys, seq, login with the lockout
//! counter, one owner session, and checking every signed call.

use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Encrypt, PrivateKey};
use serde_json::{Value, json};

use super::keys;
use crate::sources::deco::crypto::{AesSession, auth_hash, hex_decode, hex_encode, sign_seq};
use crate::sources::deco::protocol::{form_decode, lenient_json};

/// Failed logins before the Deco locks the owner account.
pub const LOCKOUT_AFTER: u32 = 10;

#[derive(Debug, Clone)]
pub struct Session {
    pub stok: String,
    pub cookie: String,
    pub aes: AesSession,
    pub seq: u64,
}

/// What a login attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Login {
    /// The new session, and the reply to encrypt with its key.
    Ok {
        stok: String,
        cookie: String,
    },
    WrongPassword {
        failures: u32,
    },
    Locked,
}

/// Why a signed request was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// The body is not `sign=…&data=…`, or the signature does not decrypt to `h=…&s=…`.
    BadSign,
    /// `h` or `s` do not match, or `k`/`i` differ from the session's.
    WrongSign,
    /// The data does not decrypt with the session key or is not JSON.
    BadData,
}

/// The fields of a signed body after checking the signature.
pub struct Signed {
    pub key: Option<(String, String)>,
    pub hash: String,
    pub data: String,
}

pub struct Auth {
    pub password: String,
    password_key: PrivateKey,
    sign_key: PrivateKey,
    /// The seq handed out by the latest `auth` call; a login must use it.
    pub seq: u64,
    pub session: Option<Session>,
    pub failures: u32,
}

impl Auth {
    pub fn new(password: &str) -> Result<Self, rsa::Error> {
        Ok(Self {
            password: password.to_owned(),
            password_key: keys::password_key()?,
            sign_key: keys::sign_key()?,
            seq: 0,
            session: None,
            failures: 0,
        })
    }

    /// `login?form=keys`: the password key, modulus in upper-case hex as the X60 sends it.
    pub fn keys_result(&self) -> Value {
        let n = hex_encode(&self.password_key.n().to_be_bytes()).to_ascii_uppercase();
        json!({"username": "", "password": [n.trim_start_matches('0'), "010001"]})
    }

    /// `login?form=auth`: the sign key and a fresh seq.
    pub fn auth_result(&mut self) -> Value {
        self.seq = rand::random_range(100_000_000..1_000_000_000);
        let n = hex_encode(&self.sign_key.n().to_be_bytes());
        json!({"key": [n.trim_start_matches('0'), "010001"], "seq": self.seq})
    }

    /// Checks the signature of a body against `seq`; `k`/`i` are optional except on login.
    pub fn open_signed(&self, body: &str, seq: u64) -> Result<Signed, Reject> {
        let fields = form_decode(body);
        let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let (Some(sign), Some(data)) = (field("sign"), field("data")) else {
            return Err(Reject::BadSign);
        };
        // A client that forgot to escape `+` sent spaces.
        let data = data.replace(' ', "+");
        let text = decrypt_blocks(&self.sign_key, &sign).ok_or(Reject::BadSign)?;
        let text = String::from_utf8(text).map_err(|_| Reject::BadSign)?;
        let parts = form_decode(&text);
        let part = |name: &str| parts.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let hash = part("h").ok_or(Reject::BadSign)?;
        let s = part("s").and_then(|s| s.parse::<u64>().ok()).ok_or(Reject::BadSign)?;
        let key = match (part("k"), part("i")) {
            (Some(k), Some(i)) => Some((k, i)),
            (None, None) => None,
            _ => return Err(Reject::BadSign),
        };
        if s != sign_seq(seq, data.len()) {
            return Err(Reject::WrongSign);
        }
        Ok(Signed { key, hash, data })
    }

    /// `login?form=login`. Returns the outcome and the AES session the reply is encrypted with.
    pub fn login(&mut self, body: &str) -> Result<(Login, AesSession), Reject> {
        let signed = self.open_signed(body, self.seq)?;
        let (k, i) = signed.key.as_ref().ok_or(Reject::BadSign)?;
        let aes = AesSession::new(k, i).map_err(|_| Reject::BadSign)?;
        if self.failures >= LOCKOUT_AFTER {
            return Ok((Login::Locked, aes));
        }
        let request = aes
            .decrypt_b64(&signed.data)
            .ok()
            .and_then(|p| lenient_json(&p).ok())
            .ok_or(Reject::BadData)?;
        let password = request
            .pointer("/params/password")
            .and_then(Value::as_str)
            .and_then(|hex| decrypt_blocks(&self.password_key, hex));
        let right =
            password.as_deref() == Some(self.password.as_bytes()) && signed.hash == auth_hash("admin", &self.password);
        if !right {
            self.failures += 1;
            if self.failures >= LOCKOUT_AFTER {
                return Ok((Login::Locked, aes));
            }
            return Ok((
                Login::WrongPassword {
                    failures: self.failures,
                },
                aes,
            ));
        }
        self.failures = 0;
        let stok = random_hex();
        let cookie = random_hex();
        // One owner session: this login ends any other.
        self.session = Some(Session {
            stok: stok.clone(),
            cookie: cookie.clone(),
            aes: aes.clone(),
            seq: self.seq,
        });
        Ok((Login::Ok { stok, cookie }, aes))
    }

    /// The session a call belongs to, if its stok and cookie are the current ones.
    pub fn session_for(&self, stok: &str, cookie: Option<&str>) -> Option<&Session> {
        self.session
            .as_ref()
            .filter(|s| s.stok == stok && cookie == Some(s.cookie.as_str()))
    }

    /// Checks a signed admin call and decrypts its JSON.
    pub fn open_call(&self, session: &Session, body: &str) -> Result<(Value, bool), Reject> {
        let signed = self.open_signed(body, session.seq)?;
        if let Some((k, i)) = &signed.key
            && (k != session.aes.key() || i != session.aes.iv())
        {
            return Err(Reject::WrongSign);
        }
        if signed.hash != auth_hash("admin", &self.password) {
            return Err(Reject::WrongSign);
        }
        let request = session
            .aes
            .decrypt_b64(&signed.data)
            .ok()
            .and_then(|p| lenient_json(&p).ok())
            .ok_or(Reject::BadData)?;
        Ok((request, signed.key.is_some()))
    }
}

/// Decrypts hex in blocks of the key's width and joins the plaintexts.
fn decrypt_blocks(key: &PrivateKey, hex: &str) -> Option<Vec<u8>> {
    let width = key.size() * 2;
    if hex.is_empty() || !hex.len().is_multiple_of(width) {
        return None;
    }
    let mut out = Vec::new();
    for block in hex.as_bytes().chunks(width) {
        let bytes = hex_decode(std::str::from_utf8(block).ok()?)?;
        out.extend(key.decrypt(Pkcs1v15Encrypt, &bytes).ok()?);
    }
    Some(out)
}

/// 32 lower-case hex digits, the shape of `stok` and `sysauth`.
fn random_hex() -> String {
    hex_encode(&rand::random::<[u8; 16]>())
}
