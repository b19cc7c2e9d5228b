//! The outbox drain: feeds what the outbox holds into the link while connected — every change
//! at once, a republish paced, nothing over the packet limit — and tells the link's health
//! (link_health.rs) what was handed over, so a refusal can be traced to its message.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::connection::{Health, lock};
use super::link::{LinkClient, Qos};
use super::outbox::{Message, Outbox, packet_size};

/// A republish goes out at most this many messages per [`REPLAY_PAUSE`] (4 000/s): fast enough
/// for 20 000 retained configs in seconds, slow enough not to flood the broker or HA.
const REPLAY_BATCH: usize = 200;
const REPLAY_PAUSE: Duration = Duration::from_millis(50);

/// Feeds outbox messages to the client while connected: every change at once, a republish at
/// most [`REPLAY_BATCH`] per [`REPLAY_PAUSE`], and nothing over the packet limit.
pub(super) async fn drain(
    client: Arc<dyn LinkClient>,
    outbox: Arc<Outbox>,
    mut connected: watch::Receiver<bool>,
    health: Health,
) {
    let mut budget = REPLAY_BATCH;
    let mut refill_at = tokio::time::Instant::now() + REPLAY_PAUSE;
    loop {
        if connected.wait_for(|c| *c).await.is_err() {
            return;
        }
        while *connected.borrow() {
            if tokio::time::Instant::now() >= refill_at {
                budget = REPLAY_BATCH;
                refill_at = tokio::time::Instant::now() + REPLAY_PAUSE;
            }
            if let Some((topic, payload)) = outbox.next_message() {
                if !send_plain(&client, &outbox, &health, topic, payload).await {
                    break;
                }
                continue;
            }
            let message = match outbox.next() {
                Some(m) => m,
                None if budget > 0 => match outbox.next_replay() {
                    Some(m) => {
                        budget -= 1;
                        m
                    }
                    None => break,
                },
                None => break,
            };
            if !send(&client, &outbox, &health, message).await {
                break;
            }
        }
        let replay_waiting = *connected.borrow() && outbox.has_dirty();
        tokio::select! {
            _ = outbox.changed() => {}
            _ = tokio::time::sleep_until(refill_at), if replay_waiting => {}
            r = connected.changed() => if r.is_err() { return },
        }
    }
}

/// Hands one response or event to the client; `false` when the client cannot take it now.
async fn send_plain(
    client: &Arc<dyn LinkClient>,
    outbox: &Outbox,
    health: &Health,
    topic: String,
    payload: String,
) -> bool {
    let size = packet_size(&topic, payload.len());
    if size > outbox.packet_limit() {
        tracing::warn!(topic = %topic, size, limit = outbox.packet_limit(), "MQTT message larger than the packet limit; skipped.");
        return true;
    }
    lock(health).sent(&topic, size);
    if let Err(e) = client
        .publish(topic.clone(), payload.clone().into_bytes(), Qos::AtLeastOnce, false)
        .await
    {
        tracing::debug!(topic = %topic, error = %e, "Publish not queued; will retry.");
        outbox.unpop_message(topic, payload);
        return false;
    }
    true
}

/// Hands one message to the client; `false` when the client cannot take it now.
async fn send(client: &Arc<dyn LinkClient>, outbox: &Outbox, health: &Health, message: Message) -> bool {
    if !outbox.fits(&message) {
        return true;
    }
    let size = packet_size(&message.topic, message.payload.len());
    lock(health).sent(&message.topic, size);
    let payload = message.payload.as_bytes().to_vec();
    if let Err(e) = client
        .publish(message.topic.clone(), payload, Qos::AtLeastOnce, message.retain)
        .await
    {
        tracing::debug!(topic = %message.topic, error = %e, "Publish not queued; will retry.");
        outbox.retry(message);
        return false;
    }
    true
}
