//! TP-Link Deco replies (shared/protocols/deco.md): the `{"data": …}` envelope and the plain
//! login replies, and the decrypted JSON that every `result` parser and the observer read.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::accounting::{Ledger, PersistedState};
use crate::config::SpeedUnit;
use crate::sources::SourceKind;
use crate::sources::deco::clientlist::ClientListReply;
use crate::sources::deco::crypto::{AesSession, RsaKey};
use crate::sources::deco::observe::{Observer, Snapshot};
use crate::sources::deco::parse;
use crate::sources::deco::protocol::{Endpoint, ErrorCode, lenient_json, lenient_text};
use crate::sources::deco::session::open_reply;

/// The AES key and IV the envelope target decrypts with; `fuzz/seed.sh` encrypts seeds with
/// them (as hex: 31323334353637383930313233343536 / 36353433323130393837363534333231).
pub const FUZZ_AES_KEY: &str = "1234567890123456";
pub const FUZZ_AES_IV: &str = "6543210987654321";

/// A whole reply body as the session reads it: outer JSON, `error_code`, the encrypted `data`
/// (decrypted with the fuzz key and read like [`deco_json`]), and the RSA keys of the plain
/// `login?form=keys` / `form=auth` replies.
pub fn deco_envelope(data: &[u8]) {
    if let Ok(outer) = serde_json::from_slice::<Value>(data) {
        let _ = ErrorCode::of(&outer);
        for pointer in ["/result/password", "/result/key"] {
            let part = |i: usize| outer.pointer(pointer)?.get(i)?.as_str();
            if let (Some(n), Some(e)) = (part(0), part(1))
                && let Ok(key) = RsaKey::from_hex(n, e)
            {
                let block = key.encrypt_hex(b"fuzz").unwrap_or_default();
                assert!(
                    block.is_empty() || block.len() == key.size() * 2,
                    "one block, fixed width"
                );
            }
        }
    }
    let Ok(aes) = AesSession::new(FUZZ_AES_KEY, FUZZ_AES_IV) else {
        unreachable!("the fuzz key is valid");
    };
    if let Ok(doc) = open_reply(Endpoint::CLIENT_LIST, data, &aes) {
        results(&doc);
    }
}

/// Decrypted bytes: lenient JSON (invalid UTF-8, bare `NaN`), then every `result` parser, two
/// polls through the observer, and the observations into a ledger whose state must survive
/// the state file.
pub fn deco_json(data: &[u8]) {
    // The typed `client_list` reading and the tree reading agree on every input (issue 11).
    let typed = ClientListReply::parse(&lenient_text(data)).map_err(|e| e.to_string());
    let tree = lenient_json(data)
        .map(|doc| ClientListReply::from_tree(&doc))
        .map_err(|e| e.to_string());
    assert_eq!(
        format!("{typed:?}"),
        format!("{tree:?}"),
        "typed and tree readings differ"
    );
    if let Ok(doc) = lenient_json(data) {
        results(&doc);
    }
}

fn results(doc: &Value) {
    let _ = ErrorCode::of(doc);
    let result = doc.get("result").unwrap_or(doc);
    let clients = parse::client_list(result).unwrap_or_default();
    let nodes = parse::device_list(result).unwrap_or_default();
    let performance = parse::performance(result);
    for p in [performance.cpu_percent, performance.memory_percent]
        .into_iter()
        .flatten()
    {
        assert!((0.0..=100.0).contains(&p), "percent {p}");
    }
    let wan = parse::wan_ipv4(result);
    let mode = parse::mode(result);
    if nodes.is_empty() && clients.is_empty() {
        return;
    }
    let interval = Duration::from_secs(30);
    let mut observer = Observer::new("deco", SpeedUnit::default(), interval);
    let mut ledger = Ledger::new(
        vec![SourceKind::Deco.feed("deco")],
        PersistedState::default(),
        BTreeMap::new(),
    );
    for poll in 0..2 {
        let at_ms = 1_700_000_000_000 + poll * 30_000;
        let snap = Snapshot {
            at_ms,
            nodes: nodes.clone(),
            clients: clients.clone(),
            per_node: BTreeMap::new(),
            performance: Some(performance),
            wan: Some(wan.clone()),
            mode: mode.clone(),
        };
        let observations = observer.observe(&snap);
        ledger.apply("deco", observations, at_ms);
    }
    super::state::survives_state_file(&ledger.to_persisted());
}
