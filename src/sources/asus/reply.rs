//! The `appGet.cgi` poll reply (shared/protocols/asus.md §4.2–4.4) read into what a poll uses.
//!
//! Read straight from the text: the client list through [`ClientList`], the dozen small hooks
//! (netdev, CPU, memory, uptime, nvram values) as small trees for the interpretations in
//! [`super::parse`], everything else skipped unread. Issue 11: a 5 000-client reply parsed into
//! one `Value` tree spent a third of the poll in the parser and the allocator. A reply that does
//! not read that way (not JSON, not an object) goes through [`hookjson::parse_object`] as it
//! always did, so its error reads as before; [`PollReply::from_tree`] is that path's
//! interpretation, and the two must agree on every input (tests, and `fuzzing::asus_appget`).

use serde::de::MapAccess;
use serde_json::{Map, Value};

use super::clientlist::{Client, ClientList, clients};
use super::hookjson::{self, HookParseError};
use super::parse::{self, CpuJiffies, Identity, Netdev};
use crate::sources::scalar::{FromObject, Key, ObjectOrNot, Skip};

/// The top-level members the interpretations below read, besides `get_clientlist`. A member
/// read in [`PollReply::from_parts`] and missing here would read as absent on the fast path:
/// `reply_tests::the_fast_path_keeps_every_member_it_reads` guards this list.
pub(crate) const SMALL_HOOKS: [&str; 15] = [
    "netdev",
    "cpu_usage",
    "memory_usage",
    "uptime",
    "productid",
    "firmver",
    "buildno",
    "extendno",
    "label_mac",
    "lan_hwaddr",
    "lan_ipaddr",
    "rc_support",
    "bwdpi_db_enable",
    "dns_dpi_trf_analysis",
    "wan0_ipaddr",
];

/// Everything one poll reads from its `appGet.cgi` reply.
#[derive(Debug, Clone, PartialEq)]
pub struct PollReply {
    /// Whether the reply has `netdev` / `get_clientlist` members at all (any value).
    pub has_netdev: bool,
    pub has_clientlist: bool,
    pub identity: Identity,
    pub netdev: Option<Netdev>,
    pub uptime_s: Option<u64>,
    /// The router's own clock (Unix seconds), from `uptime()`.
    pub router_clock_s: Option<i64>,
    pub cpu: Option<CpuJiffies>,
    pub memory_percent: Option<f64>,
    pub wan_ip: Option<String>,
    pub clients: Vec<Client>,
}

impl PollReply {
    /// Reads a reply; the error is [`hookjson::parse_object`]'s, word for word.
    pub fn parse(text: &str) -> Result<Self, HookParseError> {
        let cleaned = hookjson::clean(text);
        match serde_json::from_str::<ObjectOrNot<Hooks>>(&cleaned) {
            Ok(ObjectOrNot(Some(hooks))) => Ok(Self::from_parts(&hooks.small, hooks.clients)),
            // Not an object, or not JSON: the tree path, for its error message (or, should the
            // two readers ever disagree, for the reading that has always been used).
            _ => hookjson::parse_object(text).map(|map| Self::from_tree(&map)),
        }
    }

    /// The same reading from a parsed tree of the whole reply.
    pub fn from_tree(map: &Map<String, Value>) -> Self {
        let listed = map
            .get("get_clientlist")
            .map(|list| list.as_object().map(clients).unwrap_or_default());
        Self::from_parts(map, listed)
    }

    /// `small`: the reply's members (at least [`SMALL_HOOKS`]); `listed`: its clients, `None`
    /// without a `get_clientlist` member.
    fn from_parts(small: &Map<String, Value>, listed: Option<Vec<Client>>) -> Self {
        let uptime = hookjson::text(small, "uptime");
        Self {
            has_netdev: small.contains_key("netdev"),
            has_clientlist: listed.is_some(),
            identity: parse::identity(small),
            netdev: parse::netdev(small),
            uptime_s: uptime.as_deref().and_then(parse::uptime_secs),
            router_clock_s: uptime.as_deref().and_then(parse::router_time),
            cpu: parse::cpu(small),
            memory_percent: parse::memory_percent(small),
            wan_ip: hookjson::text(small, "wan0_ipaddr").filter(|ip| !ip.is_empty() && ip != "0.0.0.0"),
            clients: listed.unwrap_or_default(),
        }
    }
}

/// The top-level object: [`SMALL_HOOKS`] as trees, `get_clientlist` typed, the rest skipped. A
/// repeated member counts with its last value, as in a tree.
struct Hooks {
    small: Map<String, Value>,
    clients: Option<Vec<Client>>,
}

impl<'de> FromObject<'de> for Hooks {
    fn from_object<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut hooks = Hooks {
            small: Map::new(),
            clients: None,
        };
        while let Some(Key(key)) = map.next_key::<Key>()? {
            if key == "get_clientlist" {
                let list = map.next_value::<ObjectOrNot<ClientList>>()?;
                hooks.clients = Some(list.0.map(|l| l.0).unwrap_or_default());
            } else if SMALL_HOOKS.contains(&&*key) {
                let value = map.next_value::<Value>()?;
                hooks.small.insert(key.into_owned(), value);
            } else {
                map.next_value::<Skip>()?;
            }
        }
        Ok(hooks)
    }
}

#[cfg(test)]
#[path = "reply_tests.rs"]
mod tests;
