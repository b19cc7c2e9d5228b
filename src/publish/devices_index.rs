//! `<base>/bridge/devices`: the list of every known device, kept useful at any household size.
//!
//! While the whole JSON array fits one packet, it is published as it always was: one retained
//! array. A household too big for that (5 000 clients make ~300 kB, over common broker limits)
//! gets the array split into retained parts `<base>/bridge/devices/<n>` (1-based, each a JSON
//! array that fits the packet limit), and `bridge/devices` becomes an index:
//! `{"count": <devices>, "parts": ["<base>/bridge/devices/1", …]}`. Parts that are no longer
//! needed are cleared, also those an earlier run left retained (the discovery scan reports
//! them, [`DevicesIndex::saw_part`]). Each device's entry is rendered only when the device is touched, and the
//! list is assembled only when an entry changed.

use std::collections::BTreeMap;

use super::outbox::packet_size;
use super::topics::Topics;
use crate::model::DeviceId;

/// Parts stay well below any sane limit so one of them never dominates the link.
const PART_MAX: usize = 128 * 1024;

#[derive(Debug, Default)]
pub struct DevicesIndex {
    entries: BTreeMap<DeviceId, String>,
    changed: bool,
    /// The limit the last rendering was made for, and how many parts it had.
    rendered_for: Option<usize>,
    parts_published: usize,
}

impl DevicesIndex {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records a device's entry (its JSON object); marks the list changed if it differs.
    pub fn set(&mut self, id: &DeviceId, entry: String) {
        if self.entries.get(id) != Some(&entry) {
            self.entries.insert(id.clone(), entry);
            self.changed = true;
        }
    }

    /// Replaces every entry (after devices were added or forgotten).
    pub fn replace_all(&mut self, entries: impl IntoIterator<Item = (DeviceId, String)>) {
        let fresh: BTreeMap<_, _> = entries.into_iter().collect();
        if fresh != self.entries {
            self.entries = fresh;
            self.changed = true;
        }
    }

    /// A retained part `n` exists on the broker (left by an earlier run): cleared at the next
    /// render unless still needed.
    pub fn saw_part(&mut self, n: usize) {
        if n > self.parts_published {
            self.parts_published = n;
            self.changed = true;
        }
    }

    /// The messages to put (topic, payload; an empty payload clears a retained part), or
    /// nothing when neither the entries nor the limit changed since the last call.
    pub fn render(&mut self, topics: &Topics, limit: usize) -> Option<Vec<(String, String)>> {
        if !self.changed && self.rendered_for == Some(limit) {
            return None;
        }
        self.changed = false;
        self.rendered_for = Some(limit);
        let main = topics.bridge_devices();
        let whole_len = 2 + self.entries.values().map(|e| e.len() + 1).sum::<usize>();
        let mut out = Vec::new();
        let parts = if packet_size(&main, whole_len) <= limit {
            out.push((main, join(self.entries.values())));
            Vec::new()
        } else {
            let parts = self.split(topics, limit.min(PART_MAX));
            let names: Vec<String> = (1..=parts.len()).map(|n| part_topic(topics, n)).collect();
            let index = serde_json::json!({"count": self.entries.len(), "parts": names});
            out.push((main, index.to_string()));
            parts
        };
        let count = parts.len();
        for (n, payload) in parts.into_iter().enumerate() {
            out.push((part_topic(topics, n + 1), payload));
        }
        for n in count + 1..=self.parts_published {
            out.push((part_topic(topics, n), String::new()));
        }
        self.parts_published = count;
        Some(out)
    }

    /// Greedy packing of entries into arrays whose packets fit `budget`.
    fn split(&self, topics: &Topics, budget: usize) -> Vec<String> {
        // The longest part topic bounds the overhead of every part.
        let overhead = packet_size(&part_topic(topics, self.entries.len().max(1)), 0);
        let room = budget.saturating_sub(overhead).max(1);
        let mut parts = Vec::new();
        let mut current: Vec<&String> = Vec::new();
        let mut len = 2;
        for entry in self.entries.values() {
            if !current.is_empty() && len + entry.len() + 1 > room {
                parts.push(join(current.drain(..)));
                len = 2;
            }
            len += entry.len() + 1;
            current.push(entry);
        }
        if !current.is_empty() {
            parts.push(join(current));
        }
        parts
    }
}

pub fn part_topic(topics: &Topics, n: usize) -> String {
    format!("{}/{n}", topics.bridge_devices())
}

/// `n` of a part topic `<base>/bridge/devices/<n>`.
pub fn part_number(topics: &Topics, topic: &str) -> Option<usize> {
    let n = topic.strip_prefix(&topics.bridge_devices())?.strip_prefix('/')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok().filter(|n| *n > 0)
}

fn join<'a>(entries: impl IntoIterator<Item = &'a String>) -> String {
    let mut out = String::from("[");
    for (i, e) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(e);
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MqttSettings;

    fn topics() -> Topics {
        Topics::new(&MqttSettings {
            base_topic: "b2m".into(),
            ..MqttSettings::default()
        })
    }

    fn index(n: usize) -> DevicesIndex {
        let mut index = DevicesIndex::new();
        for i in 0..n {
            let id = DeviceId::slugify(&format!("client_{i:05}")).unwrap();
            index.set(&id, format!("{{\"id\":\"{id}\",\"name\":\"Client {i}\"}}"));
        }
        index
    }

    fn ids(payload: &str) -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(payload).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn a_small_household_is_one_array_rendered_only_on_change() {
        let t = topics();
        let mut index = index(3);
        let out = index.render(&t, 10_000).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, "b2m/bridge/devices");
        assert_eq!(ids(&out[0].1).len(), 3);
        assert!(index.render(&t, 10_000).is_none(), "nothing changed");
        index.set(
            &DeviceId::slugify("client_00001").unwrap(),
            "{\"id\":\"client_00001\"}".into(),
        );
        assert!(index.render(&t, 10_000).is_some());
    }

    #[test]
    fn a_big_household_is_split_into_parts_that_fit_and_shrinks_back() {
        let t = topics();
        let mut index = index(10_000);
        let limit = 16 * 1024;
        let out = index.render(&t, limit).unwrap();
        let main: serde_json::Value = serde_json::from_str(&out[0].1).unwrap();
        assert_eq!(main["count"], 10_000);
        let parts = main["parts"].as_array().unwrap();
        assert_eq!(parts.len(), out.len() - 1);
        let mut all = Vec::new();
        for (n, (topic, payload)) in out[1..].iter().enumerate() {
            assert_eq!(topic, &format!("b2m/bridge/devices/{}", n + 1));
            assert_eq!(parts[n], topic.as_str());
            assert!(
                packet_size(topic, payload.len()) <= limit,
                "part {n}: {}",
                payload.len()
            );
            all.extend(ids(payload));
        }
        assert!(packet_size(&out[0].0, out[0].1.len()) <= limit);
        assert_eq!(all.len(), 10_000);
        assert!(all.windows(2).all(|w| w[0] < w[1]), "every device once, in order");

        // Back to a size that fits: one array, and every part cleared.
        let before = parts.len();
        index.replace_all([(DeviceId::slugify("solo").unwrap(), "{\"id\":\"solo\"}".into())]);
        let out = index.render(&t, limit).unwrap();
        assert_eq!(out[0].1, "[{\"id\":\"solo\"}]");
        assert_eq!(out.len(), 1 + before);
        assert!(out[1..].iter().all(|(_, p)| p.is_empty()));
    }

    #[test]
    fn parts_left_by_an_earlier_run_are_cleared() {
        let t = topics();
        assert_eq!(part_number(&t, "b2m/bridge/devices/12"), Some(12));
        for other in [
            "b2m/bridge/devices",
            "b2m/bridge/devices/",
            "b2m/bridge/devices/x1",
            "b2m/bridge/devices/0",
        ] {
            assert_eq!(part_number(&t, other), None, "{other}");
        }
        let mut index = index(3);
        index.render(&t, 10_000).unwrap();
        index.saw_part(2);
        index.saw_part(5);
        let out = index.render(&t, 10_000).unwrap();
        let cleared: Vec<&str> = out[1..].iter().map(|(topic, _)| topic.as_str()).collect();
        let expected: Vec<String> = (1..=5).map(|n| format!("b2m/bridge/devices/{n}")).collect();
        assert_eq!(cleared, expected);
        assert!(out[1..].iter().all(|(_, payload)| payload.is_empty()));
        assert!(index.render(&t, 10_000).is_none(), "cleared once");
    }

    #[test]
    fn a_lower_limit_re_renders() {
        let t = topics();
        let mut index = index(100);
        assert_eq!(index.render(&t, 1 << 20).unwrap().len(), 1);
        let out = index.render(&t, 2048).unwrap();
        assert!(out.len() > 2);
    }
}
