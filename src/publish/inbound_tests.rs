//! The filter against hand-built MQTT 3.1.1 frames, fed whole and one byte at a time.

use super::*;

fn varint(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    push_varint(&mut out, n);
    out
}

fn publish(topic: &str, qos: u8, retain: bool, packet_id: u16, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    body.extend_from_slice(topic.as_bytes());
    if qos > 0 {
        body.extend_from_slice(&packet_id.to_be_bytes());
    }
    body.extend_from_slice(payload);
    let mut frame = vec![0x30 | (qos << 1) | u8::from(retain)];
    frame.extend(varint(body.len()));
    frame.extend(body);
    frame
}

const PUBACK: [u8; 4] = [0x40, 0x02, 0x00, 0x07];

fn run(limit: usize, input: &[u8], chunk: usize) -> (Vec<u8>, u64) {
    let mut framer = Framer::new(limit);
    let mut out = Vec::new();
    for piece in input.chunks(chunk) {
        framer.feed(piece, &mut out);
    }
    (out, framer.skipped())
}

#[test]
fn packets_within_the_limit_pass_byte_for_byte() {
    let mut input = publish("b2m/bridge/request/poll", 1, false, 9, b"{}");
    input.extend(PUBACK);
    input.extend(publish("homeassistant/status", 0, true, 0, b"online"));
    input.extend([0xd0, 0x00]); // PINGRESP
    for chunk in [1, 3, input.len()] {
        assert_eq!(run(64, &input, chunk), (input.clone(), 0));
    }
}

#[test]
fn an_oversized_publish_becomes_a_notice_with_its_flags_and_packet_id() {
    let big = vec![b'x'; 5_000];
    let topic = "b2m/agent/x/counters";
    let mut input = PUBACK.to_vec();
    input.extend(publish(topic, 1, true, 0x1234, &big));
    input.extend(publish("homeassistant/status", 0, false, 0, b"online"));
    let size = publish(topic, 1, true, 0x1234, &big).len();
    let mut expected = PUBACK.to_vec();
    expected.extend(publish(
        OVERSIZED_TOPIC,
        1,
        true,
        0x1234,
        format!("{size} {topic}").as_bytes(),
    ));
    expected.extend(publish("homeassistant/status", 0, false, 0, b"online"));
    for chunk in [1, 7, 1000, input.len()] {
        assert_eq!(run(1024, &input, chunk), (expected.clone(), 1), "chunk {chunk}");
    }
    let notice = publish(OVERSIZED_TOPIC, 0, false, 0, b"");
    assert!(notice.len() < 64);
    assert_eq!(
        parse_notice(format!("{size} {topic}").as_bytes()),
        Some((size, topic.to_owned()))
    );
}

#[test]
fn qos0_and_qos2_notices_keep_their_shape() {
    for qos in [0, 2] {
        let input = publish("t", qos, false, 5, &[0; 300]);
        let (out, skipped) = run(100, &input, 1);
        assert_eq!(skipped, 1);
        let expected = publish(OVERSIZED_TOPIC, qos, false, 5, format!("{} t", input.len()).as_bytes());
        assert_eq!(out, expected);
    }
}

#[test]
fn a_17_mib_message_is_never_held() {
    // Fed in 8 KiB reads as from the socket: the output stays a few bytes.
    let topic = "homeassistant/status";
    let payload_len = 17 * 1024 * 1024;
    let mut framer = Framer::new(256 * 1024);
    let mut out = Vec::new();
    let header = publish(topic, 1, true, 1, b"");
    let mut first = header.clone();
    // Fix the length in the header for the real payload.
    first.truncate(1);
    first.extend(varint(2 + topic.len() + 2 + payload_len));
    first.extend_from_slice(&header[2..]);
    framer.feed(&first, &mut out);
    let chunk = vec![0u8; 8192];
    let mut left = payload_len;
    while left > 0 {
        let n = left.min(chunk.len());
        framer.feed(&chunk[..n], &mut out);
        left -= n;
        assert!(out.len() < 100);
    }
    framer.feed(&PUBACK, &mut out);
    assert_eq!(framer.skipped(), 1);
    assert!(out.ends_with(&PUBACK));
}

#[test]
fn a_malformed_length_is_left_to_rumqttc() {
    let input = [0x30, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00];
    let (out, skipped) = run(10, &input, 1);
    assert_eq!((out.as_slice(), skipped), (&input[..], 0));
}

#[tokio::test]
async fn the_filter_reads_through_an_async_stream() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut broker, client) = tokio::io::duplex(1024);
    let mut input = publish("a", 1, false, 3, &[1; 4000]);
    let size = input.len();
    input.extend(PUBACK);
    let writer = tokio::spawn(async move {
        broker.write_all(&input).await.unwrap();
        broker.shutdown().await.unwrap();
    });
    let mut filtered = InboundFilter::new(client, 1000);
    let mut out = Vec::new();
    filtered.read_to_end(&mut out).await.unwrap();
    writer.await.unwrap();
    let mut expected = publish(OVERSIZED_TOPIC, 1, false, 3, format!("{size} a").as_bytes());
    expected.extend(PUBACK);
    assert_eq!(out, expected);
}

/// MQTT 5 (link_rumqttc5.rs): the notice carries an empty property list after the packet id
/// (MQTT 5 §3.3.2.3), so a v5 decoder reads the notice's payload as it was written.
#[test]
fn an_mqtt5_notice_carries_an_empty_property_list() {
    let topic = "b2m/agent/x/counters";
    // A v5 PUBLISH: topic, packet id, properties (none), payload.
    let mut body = Vec::new();
    body.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    body.extend_from_slice(topic.as_bytes());
    body.extend_from_slice(&0x0102u16.to_be_bytes());
    body.push(0);
    body.extend(vec![b'x'; 5_000]);
    let mut input = vec![0x30 | (1 << 1)];
    input.extend(varint(body.len()));
    input.extend(body);
    let mut framer = Framer::new(1_000).mqtt5();
    let mut out = Vec::new();
    framer.feed(&input, &mut out);
    let notice = format!("{} {topic}", input.len());
    let mut expected_body = Vec::new();
    expected_body.extend_from_slice(&(OVERSIZED_TOPIC.len() as u16).to_be_bytes());
    expected_body.extend_from_slice(OVERSIZED_TOPIC.as_bytes());
    expected_body.extend_from_slice(&0x0102u16.to_be_bytes());
    expected_body.push(0);
    expected_body.extend_from_slice(notice.as_bytes());
    let mut expected = vec![0x30 | (1 << 1)];
    expected.extend(varint(expected_body.len()));
    expected.extend(expected_body);
    assert_eq!(out, expected);
    assert_eq!(framer.skipped(), 1);
}
