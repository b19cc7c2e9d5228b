//! An MQTT client that records everything it sees, for assertions on what the bridge published.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, PublishOptions, QoS};
use serde_json::Value;
use tokio::sync::Notify;

#[derive(Debug, Clone)]
pub struct Msg {
    pub topic: String,
    pub payload: String,
    pub retain: bool,
    /// When it arrived (for rates over real time).
    pub at: Instant,
}

#[derive(Default)]
struct Seen {
    log: Vec<Msg>,
    latest: HashMap<String, Msg>,
}

pub struct Watcher {
    seen: Arc<Mutex<Seen>>,
    notify: Arc<Notify>,
    client: AsyncClient,
    task: tokio::task::JoinHandle<()>,
}

static NEXT_ID: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Watcher {
    /// Connects and subscribes; returns once the subscription is acknowledged.
    pub async fn connect(host: &str, port: u16, filters: &[&str]) -> Self {
        Self::connect_as(host, port, None, filters).await
    }

    /// As [`Watcher::connect`], logged in as `user` (name, password).
    pub async fn connect_as(host: &str, port: u16, user: Option<(&str, &str)>, filters: &[&str]) -> Self {
        let id = format!(
            "watcher-{}-{}",
            std::process::id(),
            NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let mut options = MqttOptions::new(id, (host.to_owned(), port));
        options.set_max_packet_size(1 << 20, 1 << 20);
        if let Some((name, password)) = user {
            options.set_credentials(name.to_owned(), password.as_bytes().to_vec());
        }
        let (client, mut eventloop) = AsyncClient::builder(options).capacity(100).build();
        for f in filters {
            client
                .subscribe(f.to_string(), QoS::AtLeastOnce)
                .await
                .expect("subscribe");
        }
        let seen = Arc::new(Mutex::new(Seen::default()));
        let notify = Arc::new(Notify::new());
        let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
        let (s, n) = (seen.clone(), notify.clone());
        let wanted = filters.len();
        let task = tokio::spawn(async move {
            let mut acks = 0;
            let mut subscribed_tx = Some(subscribed_tx);
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        acks += 1;
                        if acks >= wanted
                            && let Some(tx) = subscribed_tx.take()
                        {
                            let _ = tx.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let msg = Msg {
                            topic: String::from_utf8_lossy(&p.topic).into_owned(),
                            payload: String::from_utf8_lossy(&p.payload).into_owned(),
                            retain: p.retain,
                            at: Instant::now(),
                        };
                        let mut guard = s.lock().unwrap();
                        guard.latest.insert(msg.topic.clone(), msg.clone());
                        guard.log.push(msg);
                        drop(guard);
                        n.notify_waiters();
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), subscribed)
            .await
            .expect("watcher subscribed in time")
            .expect("watcher task alive");
        Self {
            seen,
            notify,
            client,
            task,
        }
    }

    pub fn latest(&self, topic: &str) -> Option<Msg> {
        self.seen.lock().unwrap().latest.get(topic).cloned()
    }

    pub fn log(&self) -> Vec<Msg> {
        self.seen.lock().unwrap().log.clone()
    }

    pub fn count(&self, topic: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .log
            .iter()
            .filter(|m| m.topic == topic)
            .count()
    }

    pub fn topics_matching(&self, pred: impl Fn(&str) -> bool) -> Vec<String> {
        let mut t: Vec<_> = self
            .seen
            .lock()
            .unwrap()
            .latest
            .keys()
            .filter(|t| pred(t))
            .cloned()
            .collect();
        t.sort();
        t
    }

    /// Waits until the newest message on `topic` satisfies `pred`; panics with context on timeout.
    pub async fn wait_for(&self, topic: &str, timeout: Duration, pred: impl Fn(&Msg) -> bool) -> Msg {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            if let Some(m) = self.latest(topic)
                && pred(&m)
            {
                return m;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "timed out waiting on {topic}; newest: {:?}",
                    self.latest(topic).map(|m| m.payload)
                );
            }
            let _ = tokio::time::timeout(left.min(Duration::from_millis(250)), notified).await;
        }
    }

    pub async fn wait_payload(&self, topic: &str, payload: &str) -> Msg {
        self.wait_for(topic, super::WAIT, |m| m.payload == payload).await
    }

    /// Waits for a JSON payload on `topic` that satisfies `pred`.
    pub async fn wait_json(&self, topic: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let m = self
            .wait_for(topic, super::WAIT, |m| {
                serde_json::from_str::<Value>(&m.payload).is_ok_and(|v| pred(&v))
            })
            .await;
        serde_json::from_str(&m.payload).expect("json")
    }

    pub async fn publish(&self, topic: &str, payload: &str, retain: bool) {
        self.client
            .publish(
                topic.to_owned(),
                payload.as_bytes().to_vec(),
                PublishOptions::new(QoS::AtLeastOnce).retain(retain),
            )
            .await
            .expect("publish");
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}
