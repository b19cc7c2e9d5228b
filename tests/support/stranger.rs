//! Another user of the shared broker, with nothing but MQTT 3.1.1 bytes over TCP: no client
//! library limit stands between the test and what the broker accepts (issue 21).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn varint(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if n == 0 {
            return;
        }
    }
}

fn string(s: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    varint(body.len(), &mut out);
    out.extend_from_slice(body);
    out
}

/// Connects (optionally as `user`), publishes each of `messages` at QoS 1 and waits for each
/// PUBACK, then disconnects. An empty payload with `retain` clears a retained message.
pub fn publish_all(host: &str, port: u16, user: Option<(&str, &str)>, messages: &[(&str, &[u8], bool)]) {
    let mut stream = TcpStream::connect((host, port)).expect("connect to the broker");
    let id = format!(
        "stranger-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    let mut connect = Vec::new();
    string(b"MQTT", &mut connect);
    connect.push(4);
    connect.push(0x02 | if user.is_some() { 0xc0 } else { 0 });
    connect.extend_from_slice(&60u16.to_be_bytes());
    string(id.as_bytes(), &mut connect);
    if let Some((name, password)) = user {
        string(name.as_bytes(), &mut connect);
        string(password.as_bytes(), &mut connect);
    }
    stream.write_all(&frame(0x10, &connect)).expect("CONNECT");
    let mut connack = [0u8; 4];
    stream.read_exact(&mut connack).expect("CONNACK");
    assert_eq!(connack[3], 0, "broker refused the stranger's connection");
    for (i, (topic, payload, retain)) in messages.iter().enumerate() {
        let id = (i % 60_000 + 1) as u16;
        let mut body = Vec::with_capacity(payload.len() + topic.len() + 4);
        string(topic.as_bytes(), &mut body);
        body.extend_from_slice(&id.to_be_bytes());
        body.extend_from_slice(payload);
        stream
            .write_all(&frame(0x32 | u8::from(*retain), &body))
            .expect("PUBLISH");
        let mut puback = [0u8; 4];
        stream.read_exact(&mut puback).expect("PUBACK");
    }
    let _ = stream.write_all(&[0xe0, 0x00]);
}

/// One message as a stranger.
pub fn publish(host: &str, port: u16, topic: &str, payload: &[u8], retain: bool) {
    publish_all(host, port, None, &[(topic, payload, retain)]);
}
