//! `admin/client?form=client_list` (shared/protocols/deco.md §5.1) read straight from the
//! decrypted text into [`ClientEntry`]s: the `error_code`, and of `result` only the members of
//! each client the bridge uses; the rest is skipped unread. Issue 11: a 5 000-client list
//! became a `Value` tree, was cloned out of the reply, then read field by field.
//! [`client_entry`] is the one interpretation of an entry, shared with the tree path
//! ([`super::parse::client_list`]), which the two must agree with on every input.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::names::decode_name;
use super::parse::{ClientEntry, ParseError, client_list, ipv4, mac, scalar_boolean, scalar_number, scalar_text};
use super::protocol::{ErrorCode, ReplyForm};
use crate::sources::scalar::{FromObject, Key, ObjectOrNot, Scalar, Skip, named_scalars};

/// The members of a client entry the bridge reads.
const FIELDS: [&str; 10] = [
    "mac",
    "name",
    "ip",
    "online",
    "down_speed",
    "up_speed",
    "wire_type",
    "connection_type",
    "interface",
    "client_type",
];
const MAC: usize = 0;
const NAME: usize = 1;
const IP: usize = 2;
const ONLINE: usize = 3;
const DOWN: usize = 4;
const UP: usize = 5;
const WIRE_TYPE: usize = 6;
const CONNECTION_TYPE: usize = 7;
const INTERFACE: usize = 8;
const CLIENT_TYPE: usize = 9;

/// A client entry's [`FIELDS`] as sent (a repeated member: the last, as in a tree).
#[derive(Debug, Default)]
pub(super) struct ClientFields<'a>([Option<Scalar<'a>>; FIELDS.len()]);

impl<'a> ClientFields<'a> {
    pub(super) fn from_tree(entry: &'a Map<String, Value>) -> Self {
        Self(FIELDS.map(|name| entry.get(name).map(Scalar::from_value)))
    }

    fn get(&self, field: usize) -> Option<&Scalar<'a>> {
        self.0.get(field)?.as_ref()
    }

    fn text(&self, field: usize) -> Option<String> {
        self.get(field).and_then(scalar_text)
    }
}

impl<'de> FromObject<'de> for ClientFields<'de> {
    fn from_object<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        named_scalars(map, &FIELDS).map(Self)
    }
}

/// The one interpretation of a client entry, whichever way it was read.
pub(super) fn client_entry(f: &ClientFields) -> ClientEntry {
    let raw_mac = f.text(MAC).unwrap_or_default();
    ClientEntry {
        mac: mac(&raw_mac),
        name: f.text(NAME).and_then(|n| decode_name(&n)),
        ip: f.text(IP).and_then(|ip| ipv4(&ip)),
        online: f.get(ONLINE).and_then(scalar_boolean).unwrap_or(false),
        down: f.get(DOWN).and_then(scalar_number),
        up: f.get(UP).and_then(scalar_number),
        wire_type: f.text(WIRE_TYPE),
        connection_type: f.text(CONNECTION_TYPE),
        interface: f.text(INTERFACE),
        client_type: f.text(CLIENT_TYPE),
        raw_mac,
    }
}

/// A decrypted `client_list` reply: its `error_code` and what [`client_list`] would make of
/// its `result` (`{}` when there is none, as the tree path reads it).
#[derive(Debug, Clone, PartialEq)]
pub struct ClientListReply {
    pub code: ErrorCode,
    pub clients: Result<Vec<ClientEntry>, ParseError>,
}

impl ClientListReply {
    /// Reads the decrypted (lenient) text; the error is `serde_json`'s for a `Value`, so the
    /// "not JSON" message is the one the tree path gave.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        match serde_json::from_str::<ObjectOrNot<Reply>>(text) {
            Ok(ObjectOrNot(Some(reply))) => Ok(Self {
                code: ErrorCode::from_member(reply.error_code.as_ref()),
                clients: reply.result.unwrap_or_else(no_result),
            }),
            Ok(ObjectOrNot(None)) => Ok(Self {
                code: ErrorCode::Missing,
                clients: no_result(),
            }),
            // For the message (or, should the readers ever disagree, the tree's reading).
            Err(_) => serde_json::from_str::<Value>(text).map(|doc| Self::from_tree(&doc)),
        }
    }

    /// The same from a parsed reply tree.
    pub fn from_tree(doc: &Value) -> Self {
        Self {
            code: ErrorCode::of(doc),
            clients: match doc.get("result") {
                Some(result) => client_list(result),
                None => no_result(),
            },
        }
    }
}

impl ReplyForm for ClientListReply {
    fn read(text: &str) -> Result<(ErrorCode, Self), serde_json::Error> {
        Self::parse(text).map(|reply| (reply.code.clone(), reply))
    }
}

fn no_result() -> Result<Vec<ClientEntry>, ParseError> {
    client_list(&Value::Object(Map::new()))
}

/// The decrypted reply object: `error_code` as a (small) tree, `result` typed.
struct Reply {
    error_code: Option<Value>,
    result: Option<Result<Vec<ClientEntry>, ParseError>>,
}

impl<'de> FromObject<'de> for Reply {
    fn from_object<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut reply = Reply {
            error_code: None,
            result: None,
        };
        while let Some(Key(key)) = map.next_key::<Key>()? {
            match &*key {
                "error_code" => reply.error_code = Some(map.next_value()?),
                "result" => {
                    let result = map.next_value::<ObjectOrNot<ResultObject>>()?;
                    reply.result = Some(match result.0 {
                        Some(ResultObject(Some(list))) => list.0,
                        // No `client_list` member, or a `result` that is not an object.
                        _ => no_result(),
                    });
                }
                _ => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(reply)
    }
}

/// `result`: its (last) `client_list` member.
struct ResultObject(Option<ClientList>);

impl<'de> FromObject<'de> for ResultObject {
    fn from_object<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut list = None;
        while let Some(Key(key)) = map.next_key::<Key>()? {
            if key == "client_list" {
                list = Some(map.next_value::<ClientList>()?);
            } else {
                map.next_value::<Skip>()?;
            }
        }
        Ok(Self(list))
    }
}

/// `client_list`: the entries, or the tree path's error for its shape.
struct ClientList(Result<Vec<ClientEntry>, ParseError>);

impl<'de> Deserialize<'de> for ClientList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ClientListVisitor)
    }
}

struct ClientListVisitor;

impl ClientListVisitor {
    fn not_a_list<E>(self) -> Result<ClientList, E> {
        Ok(ClientList(Err(ParseError("client_list is not a list".into()))))
    }
}

impl<'de> Visitor<'de> for ClientListVisitor {
    type Value = ClientList;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ClientList, A::Error> {
        let mut entries = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        let mut not_object = None;
        let mut i = 0;
        while let Some(entry) = seq.next_element::<ObjectOrNot<ClientFields>>()? {
            match entry.0 {
                Some(fields) if not_object.is_none() => entries.push(client_entry(&fields)),
                Some(_) => {}
                None => {
                    not_object.get_or_insert(i);
                }
            }
            i += 1;
        }
        Ok(ClientList(match not_object {
            None => Ok(entries),
            Some(i) => Err(ParseError(format!("client_list[{i}] is not an object"))),
        }))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ClientList, A::Error> {
        crate::sources::scalar::drain_map(map)?;
        self.not_a_list()
    }

    fn visit_bool<E>(self, _: bool) -> Result<ClientList, E> {
        self.not_a_list()
    }

    fn visit_i64<E>(self, _: i64) -> Result<ClientList, E> {
        self.not_a_list()
    }

    fn visit_u64<E>(self, _: u64) -> Result<ClientList, E> {
        self.not_a_list()
    }

    fn visit_f64<E>(self, _: f64) -> Result<ClientList, E> {
        self.not_a_list()
    }

    fn visit_str<E>(self, _: &str) -> Result<ClientList, E> {
        self.not_a_list()
    }

    fn visit_unit<E>(self) -> Result<ClientList, E> {
        self.not_a_list()
    }

    fn visit_none<E>(self) -> Result<ClientList, E> {
        self.not_a_list()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<ClientList, D::Error> {
        ClientList::deserialize(d)
    }
}

#[cfg(test)]
#[path = "clientlist_tests.rs"]
mod tests;
