//! One port for MQTT 3.1.1 and MQTT 5 on the demo's built-in broker. rumqttd opens one
//! listener per protocol version; Home Assistant is moving its own link to MQTT 5 (3.x "breaks
//! in 2027.1") while the bridge speaks 3.1.1, and both are pointed at the one URL the demo
//! prints. So that port is this front: it reads the CONNECT's protocol level and splices the
//! connection to rumqttd's 3.1.1 or 5 listener (both on 127.0.0.1, on ports of their own).

use std::net::Ipv4Addr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Where each protocol level goes.
#[derive(Debug, Clone, Copy)]
pub struct Backends {
    /// MQTT 3.1.1 (level 4), and 3.1 (level 3), which rumqttd's v4 listener refuses itself.
    pub v4: u16,
    /// MQTT 5 (level 5).
    pub v5: u16,
}

/// A client that does not finish its CONNECT's first bytes in this time is dropped.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts until the runtime ends; one task per connection.
pub async fn serve(listener: TcpListener, backends: Backends) {
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(splice(inbound, backends));
    }
}

async fn splice(mut inbound: TcpStream, backends: Backends) {
    let Ok(Ok((prefix, level))) = tokio::time::timeout(HEADER_TIMEOUT, read_connect_start(&mut inbound)).await else {
        return;
    };
    let port = if level == 5 { backends.v5 } else { backends.v4 };
    let Ok(mut outbound) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await else {
        tracing::warn!(port, level, "Built-in MQTT broker: its listener does not answer.");
        return;
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    if outbound.write_all(&prefix).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
}

/// Reads a CONNECT up to and including its protocol level: fixed header, remaining length
/// (1–4 bytes), protocol name (`MQTT`, or `MQIsdp` for 3.1), level. Returns the bytes read, to
/// be passed on unchanged, and the level. Anything that is not a CONNECT is an error.
async fn read_connect_start(stream: &mut TcpStream) -> std::io::Result<(Vec<u8>, u8)> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let mut prefix = Vec::with_capacity(16);
    let mut byte = [0u8; 1];
    stream.read_exact(&mut byte).await?;
    prefix.push(byte[0]);
    if byte[0] != 0x10 {
        return Err(bad("not a CONNECT"));
    }
    for i in 0..4 {
        stream.read_exact(&mut byte).await?;
        prefix.push(byte[0]);
        if byte[0] & 0x80 == 0 {
            break;
        }
        if i == 3 {
            return Err(bad("remaining length longer than 4 bytes"));
        }
    }
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    prefix.extend_from_slice(&len);
    let name_len = usize::from(u16::from_be_bytes(len));
    if name_len > 6 {
        return Err(bad("unknown protocol name"));
    }
    let mut name = vec![0u8; name_len + 1];
    stream.read_exact(&mut name).await?;
    prefix.extend_from_slice(&name);
    match (&name[..name_len], name[name_len]) {
        (b"MQTT" | b"MQIsdp", level) => Ok((prefix, level)),
        _ => Err(bad("unknown protocol name")),
    }
}

/// rumqttd's MQTT 5 listener accepts an anonymous MQTT 5 CONNECT.
pub(super) async fn wait_answering_v5(port: u16, tries: u32) -> bool {
    for n in 0..tries {
        // Its own client id per attempt: an attempt that timed out may still be registered,
        // and the broker logs a duplicate id as an error.
        let id = format!("b2m-probe-v5-{n}");
        let probe = async {
            let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await.ok()?;
            stream.write_all(&connect_v5(id.as_bytes())).await.ok()?;
            // The whole CONNACK (a v5 one carries properties): a socket closed with bytes
            // unread is reset, and the broker logs a reset as an error.
            let mut head = [0u8; 2];
            stream.read_exact(&mut head).await.ok()?;
            let mut rest = vec![0u8; usize::from(head[1])];
            stream.read_exact(&mut rest).await.ok()?;
            let _ = stream.write_all(&[0xe0, 0]).await;
            let _ = stream.shutdown().await;
            // Until the broker closes its side: a clean end, not a reset.
            let mut tail = Vec::new();
            let _ = tokio::time::timeout(Duration::from_millis(500), stream.read_to_end(&mut tail)).await;
            // CONNACK, session-present flags, reason code 0 (success).
            Some(head[0] == 0x20 && rest.get(1) == Some(&0))
        };
        if let Ok(Some(true)) = tokio::time::timeout(Duration::from_secs(2), probe).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// An MQTT 5 CONNECT: clean start, keep-alive 10 s, no properties, anonymous.
pub(super) fn connect_v5(id: &[u8]) -> Vec<u8> {
    let mut connect = vec![0x10, 0, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 10, 0];
    connect.extend_from_slice(&[0, id.len() as u8]);
    connect.extend_from_slice(id);
    connect[1] = (connect.len() - 2) as u8;
    connect
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (client.unwrap(), server.unwrap().0)
    }

    #[tokio::test]
    async fn reads_the_level_of_v311_and_v5_connects_and_keeps_their_bytes() {
        for level in [4u8, 5] {
            let (mut client, mut server) = pair().await;
            let connect = [0x10, 0x10, 0, 4, b'M', b'Q', b'T', b'T', level, 0x02, 0, 10];
            client.write_all(&connect).await.unwrap();
            let (prefix, got) = read_connect_start(&mut server).await.unwrap();
            assert_eq!(got, level);
            assert_eq!(prefix, connect[..9].to_vec());
        }
    }

    #[tokio::test]
    async fn a_long_remaining_length_is_read_whole() {
        let (mut client, mut server) = pair().await;
        // Remaining length 200 = 0xC8 0x01.
        let connect = [0x10, 0xC8, 0x01, 0, 4, b'M', b'Q', b'T', b'T', 5];
        client.write_all(&connect).await.unwrap();
        let (prefix, level) = read_connect_start(&mut server).await.unwrap();
        assert_eq!((prefix.len(), level), (connect.len(), 5));
    }

    #[tokio::test]
    async fn anything_but_a_connect_is_refused() {
        let (mut client, mut server) = pair().await;
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        assert!(read_connect_start(&mut server).await.is_err());
    }
}
