//! [`Metadata`]: the string map of `status.artifact.metadata`, kept compact.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A map of strings to strings, sorted by key, in one allocation of its entries.
///
/// The artifact's metadata (a few OCI manifest annotations) sits in every object of the watch
/// cache; a `BTreeMap` would give each object a node of eleven entries, most of them empty. On
/// the wire and in the schema it is a plain map, as in Flux's API.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Metadata(Box<[(String, String)]>);

impl Metadata {
    /// The value of `key`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    /// Whether `key` has a value.
    #[must_use]
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    #[cfg(test)]
    /// The entries, sorted by key.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    #[cfg(test)]
    /// The number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    #[cfg(test)]
    /// Whether there are no entries.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(String, String)> for Metadata {
    /// Collects `entries`; of repeated keys the last wins, as in a map.
    fn from_iter<I: IntoIterator<Item = (String, String)>>(entries: I) -> Self {
        let mut entries: Vec<(String, String)> = entries.into_iter().collect();
        // A stable sort keeps repeated keys in their order, so the last of each run wins.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut kept: Vec<(String, String)> = Vec::with_capacity(entries.len());
        for entry in entries {
            match kept.last_mut() {
                Some(last) if last.0 == entry.0 => *last = entry,
                _ => kept.push(entry),
            }
        }
        Metadata(kept.into_boxed_slice())
    }
}

impl From<BTreeMap<String, String>> for Metadata {
    fn from(map: BTreeMap<String, String>) -> Self {
        Metadata(map.into_iter().collect::<Vec<_>>().into_boxed_slice())
    }
}

#[cfg(test)]
impl From<Metadata> for BTreeMap<String, String> {
    fn from(metadata: Metadata) -> Self {
        metadata.0.into_vec().into_iter().collect()
    }
}

impl std::ops::Index<&str> for Metadata {
    type Output = String;

    /// The value of `key`.
    ///
    /// # Panics
    /// When `key` has no value, as a map's index does.
    fn index(&self, key: &str) -> &String {
        match self.0.binary_search_by(|(k, _)| k.as_str().cmp(key)) {
            Ok(i) => &self.0[i].1,
            Err(_) => panic!("no metadata entry {key:?}"),
        }
    }
}

impl Serialize for Metadata {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = Metadata;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of strings")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Metadata, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
                while let Some(entry) = map.next_entry::<String, String>()? {
                    entries.push(entry);
                }
                Ok(entries.into_iter().collect())
            }
        }
        deserializer.deserialize_map(Entries)
    }
}

impl JsonSchema for Metadata {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        <BTreeMap<String, String>>::schema_name()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        <BTreeMap<String, String>>::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_as_a_sorted_map() {
        let m: Metadata = serde_json::from_str(r#"{"b":"2","a":"1","c":"3"}"#).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m.get("a"), Some("1"));
        assert_eq!(m["c"], "3");
        assert_eq!(m.get("d"), None);
        assert!(m.contains_key("b"));
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"a":"1","b":"2","c":"3"}"#
        );
        let map: BTreeMap<String, String> = m.clone().into();
        assert_eq!(Metadata::from(map), m);
    }

    #[test]
    fn a_repeated_key_keeps_its_last_value() {
        let m: Metadata = [("k", "1"), ("a", "x"), ("k", "2")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(m.iter().collect::<Vec<_>>(), [("a", "x"), ("k", "2")]);
        let parsed: Metadata = serde_json::from_str(r#"{"k":"1","k":"2"}"#).unwrap();
        assert_eq!(parsed.get("k"), Some("2"));
    }

    #[test]
    fn refuses_what_is_not_a_map_of_strings() {
        assert!(serde_json::from_str::<Metadata>(r#"{"a":1}"#).is_err());
        assert!(serde_json::from_str::<Metadata>(r#"["a"]"#).is_err());
    }

    #[test]
    fn has_the_schema_of_a_string_map() {
        let ours = schemars::schema_for!(Metadata);
        let map = schemars::schema_for!(BTreeMap<String, String>);
        assert_eq!(ours, map);
    }
}
