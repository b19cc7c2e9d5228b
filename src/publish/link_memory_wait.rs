//! What a test reads from the in-memory broker (link_memory.rs): what the bridge published,
//! what is retained, the connection's history, and waits for a message on tokio's clock.

use std::collections::BTreeMap;

use super::{MemoryBroker, Published};

impl MemoryBroker {
    /// The packets of ours the broker refused so far (topic, packet size), in order.
    pub fn refused(&self) -> Vec<(String, usize)> {
        self.lock().refused.clone()
    }

    /// Everything the bridge published so far, in order.
    pub fn published(&self) -> Vec<Published> {
        self.lock().log.clone()
    }

    /// What the bridge published to `topic`, in order.
    pub fn published_to(&self, topic: &str) -> Vec<Published> {
        self.lock().log.iter().filter(|m| m.topic == topic).cloned().collect()
    }

    pub fn last(&self, topic: &str) -> Option<Published> {
        self.lock().log.iter().rev().find(|m| m.topic == topic).cloned()
    }

    /// The retained messages now (topic → payload), as a new subscriber would get them.
    pub fn retained(&self) -> BTreeMap<String, String> {
        self.lock().retained.clone()
    }

    pub fn is_connected(&self) -> bool {
        self.lock().connected
    }

    /// How many connections the broker accepted.
    pub fn connects(&self) -> u32 {
        self.lock().connects
    }

    /// How many times the bridge tried to connect, refused attempts included.
    pub fn attempts(&self) -> u32 {
        self.lock().attempts
    }

    pub fn subscriptions(&self) -> Vec<String> {
        self.lock().subscriptions.clone()
    }

    /// The will's topic the bridge connected with (its payload is `offline`, retained).
    pub fn will_topic(&self) -> Option<String> {
        self.lock().will_topic.clone()
    }

    /// Waits (on tokio's clock, up to [`WAIT`] or as set) until `found` finds something in
    /// what the bridge published so far.
    async fn wait_until<T>(&self, topic: &str, found: impl Fn(&[Published]) -> Option<T>) -> T {
        let mut changed = self.0.changed.subscribe();
        let wait = self.lock().wait;
        let result = tokio::time::timeout(wait, async {
            loop {
                if let Some(hit) = found(&self.lock().log) {
                    return hit;
                }
                if changed.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        })
        .await;
        match result {
            Ok(hit) => hit,
            Err(_) => panic!(
                "nothing on {topic} as expected within {wait:?}; last: {:?}",
                self.last(topic)
            ),
        }
    }

    /// Waits until the bridge publishes to `topic` a message that `pred` accepts, published
    /// at `from` or later ([`Published::seq`], [`MemoryBroker::mark`]).
    pub async fn wait_for_after(&self, from: usize, topic: &str, pred: impl Fn(&Published) -> bool) -> Published {
        self.wait_until(topic, |log| {
            log.iter().skip(from).find(|m| m.topic == topic && pred(m)).cloned()
        })
        .await
    }

    /// [`MemoryBroker::wait_for_after`] from the start.
    pub async fn wait_for(&self, topic: &str, pred: impl Fn(&Published) -> bool) -> Published {
        self.wait_for_after(0, topic, pred).await
    }

    /// Waits until the newest message on `topic` is one that `pred` accepts (what a
    /// subscriber holds now).
    pub async fn wait_latest(&self, topic: &str, pred: impl Fn(&Published) -> bool) -> Published {
        self.wait_until(topic, |log| {
            log.iter().rev().find(|m| m.topic == topic).filter(|m| pred(m)).cloned()
        })
        .await
    }

    /// Waits until the newest payload on `topic` is JSON that `pred` accepts.
    pub async fn wait_json(&self, topic: &str, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        self.wait_latest(topic, |m| pred(&m.json())).await.json()
    }

    /// Waits until the newest payload on `topic` is this one.
    pub async fn wait_payload(&self, topic: &str, payload: &str) -> Published {
        self.wait_latest(topic, |m| m.payload == payload).await
    }

    /// How many messages the bridge has published so far: a mark for [`MemoryBroker::wait_for_after`].
    pub fn mark(&self) -> usize {
        self.lock().log.len()
    }
}
