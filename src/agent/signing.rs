//! Signed agent messages (issue 21, "agents that prove who they are"). Anyone who can publish
//! on the broker can publish on `<base>/agent/<name>/counters`; with a key shared by the agent
//! and the bridge (`[agent] key` there, `[agents.<name>] key` here), only the agent can say
//! something that counts.
//!
//! A signed message is an envelope around the plain one (payload.rs), on the same topic:
//! `{"seq":N,"msg":"<the agent message as JSON text>","hmac":"<64 hex digits>"}`, where the
//! HMAC-SHA256 (RFC 2104) covers a domain tag, the agent's name, `seq` and `msg`. `seq` never
//! repeats: the agent persists a reservation ahead of what it used ([`SeqCounter`]) and starts
//! from at least the wall clock in microseconds, so even a lost state dir does not go back. The
//! bridge takes an online message only with a `seq` above the last one it took, so a replayed
//! message counts nothing.

use std::path::{Path, PathBuf};

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const DOMAIN: &[u8] = b"bandwidth2mqtt-agent-v1";
/// Sequence numbers reserved per write of the agent's counter file: at one message per 10 s,
/// one write a day.
const RESERVE: u64 = 10_000;
const SEQ_FILE: &str = "agent_seq";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    pub seq: u64,
    pub msg: String,
    pub hmac: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("unsigned message (this agent has a key: the agent needs the same [agent] key)")]
    Unsigned,
    #[error("bad signature (forged, or the agent's key differs from the bridge's)")]
    BadSignature,
}

fn mac(key: &[u8], name: &str, seq: u64, msg: &str) -> HmacSha256 {
    // Any key length is valid for HMAC; `new_from_slice` cannot fail for it.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    for part in [DOMAIN, name.as_bytes(), seq.to_string().as_bytes(), msg.as_bytes()] {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    mac
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// The signed payload for agent `name`.
pub fn sign(key: &[u8], name: &str, seq: u64, msg: &str) -> String {
    let tag = mac(key, name, seq, msg).finalize().into_bytes();
    let envelope = Envelope {
        seq,
        msg: msg.to_owned(),
        hmac: hex(&tag),
    };
    serde_json::to_string(&envelope).unwrap_or_default()
}

/// Whether `payload` looks like an envelope at all (an unsigned message has no `hmac`).
pub fn envelope(payload: &[u8]) -> Option<Envelope> {
    serde_json::from_slice(payload).ok()
}

/// Checks an envelope for agent `name`; `Ok` holds its seq and the message text.
pub fn verify(key: &[u8], name: &str, envelope: &Envelope) -> Result<(), SignError> {
    let tag = unhex(&envelope.hmac).ok_or(SignError::BadSignature)?;
    mac(key, name, envelope.seq, &envelope.msg)
        .verify_slice(&tag)
        .map_err(|_| SignError::BadSignature)
}

/// The agent's counter: never the same `seq` twice, across restarts and crashes.
#[derive(Debug)]
pub struct SeqCounter {
    path: PathBuf,
    next: u64,
    reserved: u64,
}

impl SeqCounter {
    /// Opens the counter in `state_dir`, starting at least at `floor` (the wall clock in µs).
    pub fn open(state_dir: &Path, floor: u64) -> std::io::Result<Self> {
        let path = state_dir.join(SEQ_FILE);
        let stored = match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().parse::<u64>().unwrap_or(0),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        let start = stored.max(floor);
        let mut counter = Self {
            path,
            next: start,
            reserved: start,
        };
        counter.reserve()?;
        Ok(counter)
    }

    fn reserve(&mut self) -> std::io::Result<()> {
        let until = self.next.saturating_add(RESERVE);
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, until.to_string())?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        self.reserved = until;
        Ok(())
    }

    /// The next number, written ahead to disk before it is handed out.
    pub fn take(&mut self) -> std::io::Result<u64> {
        if self.next >= self.reserved {
            self.reserve()?;
        }
        let seq = self.next;
        self.next += 1;
        Ok(seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_signed_message_verifies_and_any_change_breaks_it() {
        let text = sign(KEY, "beast", 7, r#"{"v":1}"#);
        let env = envelope(text.as_bytes()).unwrap();
        assert_eq!(env.seq, 7);
        assert_eq!(verify(KEY, "beast", &env), Ok(()));
        assert_eq!(
            verify(b"another key of enough length", "beast", &env),
            Err(SignError::BadSignature)
        );
        assert_eq!(verify(KEY, "panda", &env), Err(SignError::BadSignature));
        let mut later = env.clone();
        later.seq = 8;
        assert_eq!(verify(KEY, "beast", &later), Err(SignError::BadSignature));
        let mut changed = env.clone();
        changed.msg = r#"{"v":2}"#.into();
        assert_eq!(verify(KEY, "beast", &changed), Err(SignError::BadSignature));
        let mut garbage = env;
        garbage.hmac = "zz".into();
        assert_eq!(verify(KEY, "beast", &garbage), Err(SignError::BadSignature));
        assert!(envelope(br#"{"v":1,"name":"beast","online":false}"#).is_none());
    }

    #[test]
    fn the_counter_never_repeats_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = SeqCounter::open(dir.path(), 100).unwrap();
        let first: Vec<u64> = (0..3).map(|_| c.take().unwrap()).collect();
        assert_eq!(first, [100, 101, 102]);
        // A crash: nothing but the file survives; the next run starts past the reservation.
        drop(c);
        let mut again = SeqCounter::open(dir.path(), 0).unwrap();
        assert!(again.take().unwrap() > 102);
        // A clock ahead of the file wins.
        let mut ahead = SeqCounter::open(dir.path(), u64::MAX / 2).unwrap();
        assert_eq!(ahead.take().unwrap(), u64::MAX / 2);
    }
}
