//! Building blocks for reading router replies straight into typed structs (issue 11): a
//! reply's fields are taken as borrowed [`Scalar`]s and everything a poll does not use is
//! stepped over with [`Skip`], instead of building a `serde_json::Value` tree of the whole
//! reply. Both accept exactly what `Value` accepts (same nesting limit, same number range, same
//! error positions), so a reply that failed to parse before still fails, with the same message.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};

/// One JSON value as the parsers read fields: strings borrowed from the reply where they have
/// no escapes, numbers as `serde_json` reads them, containers only as "something else".
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    Str(Cow<'a, str>),
    Num(Number),
    Bool(bool),
    Null,
    /// An array or an object (fields are never containers in the forms we read).
    Container,
}

impl<'a> Scalar<'a> {
    /// The same view of an already parsed value (the `Value` paths that remain).
    pub fn from_value(value: &'a Value) -> Self {
        match value {
            Value::String(s) => Self::Str(Cow::Borrowed(s)),
            Value::Number(n) => Self::Num(n.clone()),
            Value::Bool(b) => Self::Bool(*b),
            Value::Null => Self::Null,
            Value::Array(_) | Value::Object(_) => Self::Container,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Num(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::Num(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        // As `Value` does: a float that is not finite is null.
        Ok(Number::from_f64(v).map_or(Scalar::Null, Scalar::Num))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Scalar::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq)?;
        Ok(Scalar::Container)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map)?;
        Ok(Scalar::Container)
    }
}

/// A value that is read and thrown away, checked as strictly as `Value` would check it.
/// (`serde::de::IgnoredAny` on `serde_json` skips without its nesting limit or number range,
/// so garbage that `Value` refuses would pass: a reply must not parse better than before.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skip;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_str<E>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_unit<E>(self) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_none<E>(self) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Skip, D::Error> {
        Skip::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Skip, A::Error> {
        drain_seq(seq).map(|()| Skip)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Skip, A::Error> {
        drain_map(map).map(|()| Skip)
    }
}

/// Reads the rest of a list, element by element, as [`Skip`].
pub fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<Skip>()?.is_some() {}
    Ok(())
}

/// The members of an object named in `names`, by position; every other member is skipped as
/// strictly as a tree would read it. A repeated member keeps its last value, like the tree.
pub fn named_scalars<'de, A: MapAccess<'de>, const N: usize>(
    mut map: A,
    names: &[&str; N],
) -> Result<[Option<Scalar<'de>>; N], A::Error> {
    let mut slots: [Option<Scalar<'de>>; N] = std::array::from_fn(|_| None);
    while let Some(Key(key)) = map.next_key::<Key>()? {
        match names.iter().position(|n| *n == key) {
            Some(i) => slots[i] = Some(map.next_value()?),
            None => {
                map.next_value::<Skip>()?;
            }
        }
    }
    Ok(slots)
}

/// Reads the rest of an object, member by member, as [`Skip`].
pub fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<Skip, Skip>()?.is_some() {}
    Ok(())
}

/// An object key, borrowed from the reply unless it has escapes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key<'a>(pub Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(v)))
    }
}

/// A type read from a JSON object, member by member.
pub trait FromObject<'de>: Sized {
    fn from_object<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error>;
}

/// An object read as `T`, or `None` when the value is anything else (read and checked like
/// [`Skip`]): the tree paths' `as_object()?`.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectOrNot<T>(pub Option<T>);

impl<'de, T: FromObject<'de>> Deserialize<'de> for ObjectOrNot<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ObjectOrNotVisitor(std::marker::PhantomData))
    }
}

struct ObjectOrNotVisitor<T>(std::marker::PhantomData<T>);

impl<'de, T: FromObject<'de>> Visitor<'de> for ObjectOrNotVisitor<T> {
    type Value = ObjectOrNot<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(ObjectOrNot(None))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(ObjectOrNot(None))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(ObjectOrNot(None))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(ObjectOrNot(None))
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(ObjectOrNot(None))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(ObjectOrNot(None))
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(ObjectOrNot(None))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Self::Value::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq).map(|()| ObjectOrNot(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::from_object(map).map(|t| ObjectOrNot(Some(t)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads a few fields of an object, the way the typed parsers do.
    #[derive(Debug, PartialEq)]
    struct Picked<'a> {
        a: Option<Scalar<'a>>,
        b: Option<Scalar<'a>>,
    }

    impl<'de> FromObject<'de> for Picked<'de> {
        fn from_object<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
            let mut picked = Picked { a: None, b: None };
            while let Some(Key(key)) = map.next_key::<Key>()? {
                match &*key {
                    "a" => picked.a = Some(map.next_value()?),
                    "b" => picked.b = Some(map.next_value()?),
                    _ => map.next_value::<Skip>().map(|_| ())?,
                }
            }
            Ok(picked)
        }
    }

    fn picked(text: &str) -> Result<Option<Picked<'_>>, serde_json::Error> {
        serde_json::from_str::<ObjectOrNot<Picked>>(text).map(|o| o.0)
    }

    #[test]
    fn fields_are_borrowed_numbers_exact_and_the_last_duplicate_wins() {
        let p = picked(r#"{"a":"x","b":1,"c":[1,{"d":2}],"a":"y\"z","b":-2.5e3}"#)
            .unwrap()
            .unwrap();
        assert_eq!(p.a, Some(Scalar::Str(Cow::Owned("y\"z".into()))));
        assert_eq!(p.b, Some(Scalar::Num(Number::from_f64(-2500.0).unwrap())));
        let p = picked(r#"{"a":"plain","b":18446744073709551615}"#).unwrap().unwrap();
        assert!(matches!(p.a, Some(Scalar::Str(Cow::Borrowed("plain")))));
        assert_eq!(p.b, Some(Scalar::Num(u64::MAX.into())));
        let p = picked(r#"{"a":null,"b":{"x":[]}}"#).unwrap().unwrap();
        assert_eq!((p.a, p.b), (Some(Scalar::Null), Some(Scalar::Container)));
    }

    #[test]
    fn anything_but_an_object_is_none() {
        for text in ["[1,[2]]", "\"s\"", "3", "null", "true"] {
            assert_eq!(picked(text).unwrap(), None, "{text}");
        }
    }

    /// What `Value` refuses, skipping refuses too, with the same message.
    #[test]
    fn skipped_garbage_fails_like_a_value_tree() {
        let deep = format!("{{\"c\":{}1{}}}", "[".repeat(200), "]".repeat(200));
        for text in [
            deep.as_str(),
            r#"{"c":1e999}"#,
            r#"{"c":"\ud800x"}"#,
            r#"{"c":[1,]}"#,
            r#"{"c":"a"} x"#,
            r#"{"c":tru}"#,
            "{\"c\":\"\u{1}\"}",
        ] {
            let tree = serde_json::from_str::<Value>(text).unwrap_err().to_string();
            let typed = picked(text).unwrap_err().to_string();
            assert_eq!(typed, tree, "{text}");
        }
    }

    #[test]
    fn scalars_from_a_tree_match_scalars_read_directly() {
        let text = r#"["s",1,-1,0.5,true,null,[],{}]"#;
        let tree: Value = serde_json::from_str(text).unwrap();
        let from_tree: Vec<Scalar> = tree.as_array().unwrap().iter().map(Scalar::from_value).collect();
        let direct: Vec<Scalar> = serde_json::from_str(text).unwrap();
        assert_eq!(from_tree, direct);
        assert_eq!(direct[0].as_str(), Some("s"));
        assert_eq!(direct[1].as_str(), None);
    }
}
