//! A bounded way in: the bytes from the broker pass through [`InboundFilter`] before rumqttc
//! reads them, and a PUBLISH larger than the incoming limit never reaches it whole.
//!
//! MQTT 3.1.1 (the protocol rumqttc-v4 speaks) has no way to tell the broker how large a packet
//! we take, and rumqttc's own limit fails the whole connection on an oversized packet (its codec
//! errors on the fixed header): a stranger's retained 17 MiB message on a topic we subscribe to
//! would come back on every reconnect and keep the link down for good (issue 21, finding 1).
//! The filter reads each packet's fixed header (MQTT 3.1.1 §2.2) and, for an oversized PUBLISH
//! (§3.3), keeps its flags and packet id but swaps topic and payload for a small notice on
//! [`OVERSIZED_TOPIC`]; the rest of the packet is read and thrown away as it arrives, never
//! held. rumqttc then acknowledges the notice as it would have the original (QoS 1 and 2 stay in
//! step with the broker), and the connection reports the skip (connection.rs).
//!
//! Nothing else is changed: other packet types and every PUBLISH within the limit pass byte for
//! byte. A malformed length (a fifth length byte) ends the filtering and lets rumqttc judge.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The topic of the notice that replaces an oversized PUBLISH. Starts with `$`, which no client
/// can publish to (MQTT 3.1.1 §4.7.2), so no real message is ever mistaken for it.
pub const OVERSIZED_TOPIC: &str = "$bandwidth2mqtt/oversized";
/// Topics longer than this are cut in the notice (the log only needs to recognise them).
const NOTICE_TOPIC_MAX: usize = 200;
const READ_CHUNK: usize = 8 * 1024;

/// The notice's payload: `<packet size> <topic>` → (size, topic).
pub fn parse_notice(payload: &[u8]) -> Option<(usize, String)> {
    let text = std::str::from_utf8(payload).ok()?;
    let (size, topic) = text.split_once(' ')?;
    Some((size.parse().ok()?, topic.to_owned()))
}

#[derive(Debug)]
enum State {
    /// Reading a fixed header: the type byte and up to four length bytes.
    Header { buf: [u8; 5], len: usize },
    /// Handing on the rest of a packet within the limit.
    Pass { left: usize },
    /// An oversized PUBLISH: reading its topic (and packet id) for the notice.
    Capture {
        flags: u8,
        size: usize,
        left: usize,
        head: Vec<u8>,
    },
    /// Throwing away the rest of an oversized PUBLISH.
    Skip { left: usize },
    /// A malformed stream: everything passes, rumqttc reports it.
    Broken,
}

/// The pure part of the filter: bytes in, bytes out.
#[derive(Debug)]
pub struct Framer {
    limit: usize,
    /// MQTT 5 framing: the notice carries an empty property list (§3.3.2.3).
    v5: bool,
    state: State,
    skipped: u64,
}

fn remaining_len(buf: &[u8]) -> Option<Result<usize, ()>> {
    let mut value = 0usize;
    for (i, b) in buf.iter().skip(1).enumerate() {
        value |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(Ok(value));
        }
        if i == 3 {
            return Some(Err(()));
        }
    }
    None
}

/// How much of an oversized PUBLISH the notice needs: topic length, topic, packet id.
fn head_len(head: &[u8], qos: u8) -> usize {
    if head.len() < 2 {
        return 2;
    }
    let topic_len = usize::from(u16::from_be_bytes([head[0], head[1]]));
    2 + topic_len + if qos > 0 { 2 } else { 0 }
}

fn push_varint(out: &mut Vec<u8>, mut n: usize) {
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

impl Framer {
    /// Passes PUBLISH packets whose remaining length is at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            v5: false,
            state: State::Header { buf: [0; 5], len: 0 },
            skipped: 0,
        }
    }

    /// For an MQTT 5 stream (link_rumqttc5.rs): a backstop there, as the broker is told our
    /// limit in CONNECT and must not send anything larger.
    pub fn mqtt5(mut self) -> Self {
        self.v5 = true;
        self
    }

    /// How many oversized PUBLISH packets were replaced so far.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Consumes all of `input`, appending what rumqttc should read to `out`.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        while !input.is_empty() {
            match &mut self.state {
                State::Broken => {
                    out.extend_from_slice(input);
                    return;
                }
                State::Pass { left } => {
                    let n = (*left).min(input.len());
                    out.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    *left -= n;
                    if *left == 0 {
                        self.state = State::Header { buf: [0; 5], len: 0 };
                    }
                }
                State::Skip { left } => {
                    let n = (*left).min(input.len());
                    input = &input[n..];
                    *left -= n;
                    if *left == 0 {
                        self.state = State::Header { buf: [0; 5], len: 0 };
                    }
                }
                State::Header { buf, len } => {
                    buf[*len] = input[0];
                    *len += 1;
                    input = &input[1..];
                    let header = &buf[..*len];
                    match remaining_len(header) {
                        None => {}
                        Some(Err(())) => {
                            out.extend_from_slice(header);
                            self.state = State::Broken;
                        }
                        Some(Ok(remaining)) => {
                            let is_publish = header[0] >> 4 == 3;
                            if is_publish && remaining > self.limit {
                                self.state = State::Capture {
                                    flags: header[0] & 0x0f,
                                    size: header.len() + remaining,
                                    left: remaining,
                                    head: Vec::new(),
                                };
                            } else {
                                out.extend_from_slice(header);
                                self.state = if remaining == 0 {
                                    State::Header { buf: [0; 5], len: 0 }
                                } else {
                                    State::Pass { left: remaining }
                                };
                            }
                        }
                    }
                }
                State::Capture {
                    flags,
                    size,
                    left,
                    head,
                } => {
                    let qos = (*flags >> 1) & 0x03;
                    let want = head_len(head, qos).min(head.len() + *left);
                    let n = (want - head.len()).min(input.len());
                    head.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    *left -= n;
                    let complete_head = head.len() >= 2 && head.len() >= head_len(head, qos);
                    if complete_head || *left == 0 {
                        let (flags, size, left) = (*flags, *size, *left);
                        let head = std::mem::take(head);
                        self.notice(flags, size, &head, out);
                        self.skipped += 1;
                        self.state = if left == 0 {
                            State::Header { buf: [0; 5], len: 0 }
                        } else {
                            State::Skip { left }
                        };
                    }
                }
            }
        }
    }

    /// The small PUBLISH that stands in for an oversized one: same flags and packet id.
    fn notice(&self, flags: u8, size: usize, head: &[u8], out: &mut Vec<u8>) {
        let qos = (flags >> 1) & 0x03;
        let topic_len = if head.len() >= 2 {
            usize::from(u16::from_be_bytes([head[0], head[1]]))
        } else {
            0
        };
        let topic_end = (2 + topic_len).min(head.len());
        let topic = String::from_utf8_lossy(head.get(2..topic_end).unwrap_or_default());
        let topic: String = topic.chars().take(NOTICE_TOPIC_MAX).collect();
        let packet_id = match head.get(topic_end..topic_end + 2) {
            Some(id) if qos > 0 => id.to_vec(),
            // A QoS>0 packet cut short before its id: 1 keeps the notice well-formed.
            _ if qos > 0 => vec![0, 1],
            _ => Vec::new(),
        };
        let payload = format!("{size} {topic}");
        let properties: &[u8] = if self.v5 { &[0] } else { &[] };
        let remaining = 2 + OVERSIZED_TOPIC.len() + packet_id.len() + properties.len() + payload.len();
        out.push(0x30 | flags);
        push_varint(out, remaining);
        out.extend_from_slice(&(OVERSIZED_TOPIC.len() as u16).to_be_bytes());
        out.extend_from_slice(OVERSIZED_TOPIC.as_bytes());
        out.extend_from_slice(&packet_id);
        out.extend_from_slice(properties);
        out.extend_from_slice(payload.as_bytes());
    }
}

/// The broker's stream under the filter: plain TCP or TLS.
pub trait Io: AsyncRead + AsyncWrite + Send + Sync + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin> Io for T {}

/// rumqttc's socket connector: TCP to `host` (`host:port`), TLS with `tls` for `server` if
/// given, then the filter (it must see plain MQTT, so TLS is done here, not by rumqttc).
pub async fn connect(
    host: String,
    network_options: rumqttc::NetworkOptions,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    server: String,
    limit: usize,
    v5: bool,
) -> io::Result<InboundFilter<Box<dyn Io>>> {
    let tcp = rumqttc::default_socket_connect(host, network_options).await?;
    let stream: Box<dyn Io> = match tls {
        None => Box::new(tcp),
        Some(config) => {
            let name = rustls_pki_types::ServerName::try_from(server)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            Box::new(tokio_rustls::TlsConnector::from(config).connect(name, tcp).await?)
        }
    };
    let mut filter = InboundFilter::new(stream, limit);
    if v5 {
        filter.framer = Framer::new(limit).mqtt5();
    }
    Ok(filter)
}

/// The broker's stream, read through a [`Framer`]; writes pass straight through.
pub struct InboundFilter<S> {
    inner: S,
    framer: Framer,
    out: Vec<u8>,
    at: usize,
    chunk: Box<[u8]>,
}

impl<S> InboundFilter<S> {
    pub fn new(inner: S, limit: usize) -> Self {
        Self {
            inner,
            framer: Framer::new(limit),
            out: Vec::new(),
            at: 0,
            chunk: vec![0; READ_CHUNK].into_boxed_slice(),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for InboundFilter<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.at < this.out.len() {
                let n = (this.out.len() - this.at).min(buf.remaining());
                buf.put_slice(&this.out[this.at..this.at + n]);
                this.at += n;
                if this.at == this.out.len() {
                    this.out.clear();
                    this.at = 0;
                }
                return Poll::Ready(Ok(()));
            }
            let mut read = ReadBuf::new(&mut this.chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut read) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {
                    let filled = read.filled();
                    if filled.is_empty() {
                        // End of stream.
                        return Poll::Ready(Ok(()));
                    }
                    this.framer.feed(filled, &mut this.out);
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for InboundFilter<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[path = "inbound_tests.rs"]
mod tests;
