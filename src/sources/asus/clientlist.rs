//! `get_clientlist()` (shared/protocols/asus.md §4.3; framing §4.2): one object per client
//! keyed by its MAC, beside `maclist` and `ClientAPILevel`. Read two ways that share one
//! interpretation ([`client`]): straight from the reply text ([`ClientList`], every poll; issue
//! 11: a 5 000-client reply as a `Value` tree cost a third of the poll) and from an already
//! parsed tree ([`clients`], the `update_clients.asp` page and the fallback path).

use std::borrow::Cow;

use serde::de::MapAccess;
use serde_json::{Map, Value};

use crate::model::MacAddr;
use crate::sources::scalar::{FromObject, Key, ObjectOrNot, Scalar, Skip, named_scalars};

/// One entry of `get_clientlist()`.
#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    pub mac: MacAddr,
    pub ip: Option<String>,
    /// nickName → name → vendor (asusrouter stops at name; a vendor reads better than a MAC).
    pub name: Option<String>,
    pub vendor: Option<String>,
    pub online: bool,
    /// `isWL` as sent; interpreted with the model's radios.
    pub is_wl: Option<String>,
    pub rssi: Option<f64>,
    /// Current PHY link rates in Mbit/s (not traffic).
    pub link_tx_mbps: Option<f64>,
    pub link_rx_mbps: Option<f64>,
    pub guest: Option<String>,
    /// The AiMesh node the client hangs off, when it is not the router itself.
    pub mesh_parent: Option<MacAddr>,
    pub connected_for: Option<String>,
    pub ip_method: Option<String>,
}

/// The members of a client entry the bridge reads; the other ~30 are skipped unread.
const FIELDS: [&str; 13] = [
    "nickName",
    "name",
    "vendor",
    "ip",
    "isOnline",
    "isWL",
    "rssi",
    "curTx",
    "curRx",
    "isGN",
    "amesh_papMac",
    "wlConnectTime",
    "ipMethod",
];
const NICK_NAME: usize = 0;
const NAME: usize = 1;
const VENDOR: usize = 2;
const IP: usize = 3;
const IS_ONLINE: usize = 4;
const IS_WL: usize = 5;
const RSSI: usize = 6;
const CUR_TX: usize = 7;
const CUR_RX: usize = 8;
const IS_GN: usize = 9;
const AMESH_PAP_MAC: usize = 10;
const WL_CONNECT_TIME: usize = 11;
const IP_METHOD: usize = 12;

/// A client entry's [`FIELDS`], as sent (a repeated member: the last one, as in a tree).
#[derive(Debug, Default)]
struct Fields<'a>([Option<Scalar<'a>>; FIELDS.len()]);

impl<'a> Fields<'a> {
    fn from_tree(entry: &'a Map<String, Value>) -> Self {
        Self(FIELDS.map(|name| entry.get(name).map(Scalar::from_value)))
    }

    /// A member as text: strings as they are, numbers and booleans printed (the hook
    /// interpretation of [`super::hookjson::text`]); trimmed, and `None` when empty.
    fn text(&self, field: usize) -> Option<Cow<'_, str>> {
        let text = match self.0.get(field)?.as_ref()? {
            Scalar::Str(s) => Cow::Borrowed(s.trim()),
            Scalar::Num(n) => Cow::Owned(n.to_string()),
            Scalar::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            Scalar::Null | Scalar::Container => return None,
        };
        (!text.is_empty()).then_some(text)
    }

    fn owned(&self, field: usize) -> Option<String> {
        self.text(field).map(Cow::into_owned)
    }

    fn float(&self, field: usize) -> Option<f64> {
        self.text(field).and_then(|s| s.parse::<f64>().ok())
    }
}

impl<'de> FromObject<'de> for Fields<'de> {
    fn from_object<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        named_scalars(map, &FIELDS).map(Fields)
    }
}

/// The one interpretation of an entry, whichever way it was read.
fn client(mac: MacAddr, f: &Fields) -> Client {
    let name = f.owned(NICK_NAME).or_else(|| f.owned(NAME)).or_else(|| f.owned(VENDOR));
    let ip = f
        .text(IP)
        .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok_and(|a| !a.is_unspecified()));
    Client {
        mac,
        ip: ip.map(Cow::into_owned),
        name,
        vendor: f.owned(VENDOR),
        online: f.text(IS_ONLINE).as_deref() == Some("1"),
        is_wl: f.owned(IS_WL),
        // A signal is between -127 and 0 dBm; `-inf` (found by fuzzing) or -1e300 is
        // not a reading.
        rssi: f.float(RSSI).filter(|r| (-127.0..0.0).contains(r)),
        link_tx_mbps: f.float(CUR_TX),
        link_rx_mbps: f.float(CUR_RX),
        guest: f.text(IS_GN).filter(|g| g != "0").map(Cow::into_owned),
        mesh_parent: f
            .text(AMESH_PAP_MAC)
            .and_then(|m| m.parse::<MacAddr>().ok())
            .filter(MacAddr::is_meaningful),
        connected_for: f.owned(WL_CONNECT_TIME),
        ip_method: f.owned(IP_METHOD),
    }
}

/// Clients in a `get_clientlist` object: keys that are MACs; `maclist` and
/// `ClientAPILevel` sit beside them and are skipped.
pub fn clients(list: &Map<String, Value>) -> Vec<Client> {
    list.iter()
        .filter_map(|(key, entry)| {
            let mac: MacAddr = key.parse().ok()?;
            Some(client(mac, &Fields::from_tree(entry.as_object()?)))
        })
        .collect()
}

/// `update_clients.asp` on 386/388: the `get_clientlist` object sits inside
/// `fromNetworkmapd : [ … ]`. 3.0.0.6 serves a stub without data (`None`).
pub fn clients_from_update_page(js: &str) -> Option<Map<String, Value>> {
    let literal = super::js::value(js, "fromNetworkmapd")?;
    let list: Value = serde_json::from_str(&super::hookjson::clean(literal)).ok()?;
    list.as_array()?.first()?.as_object().cloned()
}

/// A `get_clientlist` object read straight from the reply: the same clients, in the same order,
/// as [`clients`] gives for its tree.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientList(pub Vec<Client>);

impl<'de> FromObject<'de> for ClientList {
    fn from_object<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        // Keys stay borrowed until the order is settled; a non-object entry is `None`.
        let mut listed: Vec<(Key<'de>, Option<Client>)> = Vec::new();
        while let Some(key) = map.next_key::<Key>()? {
            match key.0.parse::<MacAddr>() {
                Ok(mac) => {
                    let entry = map.next_value::<ObjectOrNot<Fields>>()?;
                    listed.push((key, entry.0.map(|f| client(mac, &f))));
                }
                Err(_) => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(Self(in_tree_order(listed)))
    }
}

/// The order and the duplicates of a `serde_json::Map` (a `BTreeMap`): by key, and of a key
/// sent twice the last entry. The router lists clients in any order; the observations (and
/// the log) come out in this one, as they did from the tree.
fn in_tree_order(mut listed: Vec<(Key<'_>, Option<Client>)>) -> Vec<Client> {
    if !listed.is_sorted_by(|a, b| a.0 < b.0) {
        // Stable: of equal keys the last sent stays last.
        listed.sort_by(|a, b| a.0.cmp(&b.0));
    }
    let mut out = Vec::with_capacity(listed.len());
    let mut iter = listed.into_iter().peekable();
    while let Some((key, client)) = iter.next() {
        if iter.peek().is_some_and(|next| next.0 == key) {
            continue;
        }
        out.extend(client);
    }
    out
}

#[cfg(test)]
#[path = "clientlist_tests.rs"]
mod tests;
