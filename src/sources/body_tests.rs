use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::http::{TlsPolicy, build_client};

const HUGE: usize = 60 * MIB;
const CAP: usize = 4 * MIB;

/// How the test server frames its body.
#[derive(Clone, Copy)]
enum Framing {
    Length,
    Chunked,
}

/// Serves one request on 127.0.0.1 with a `size`-byte body, written 64 KiB at a time until
/// the client goes away; returns the URL and a handle to the bytes it managed to write.
async fn serve(size: usize, framing: Framing) -> (String, tokio::task::JoinHandle<usize>) {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let url = format!("http://{}/getTraffic.asp", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return 0,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
        let head = match framing {
            Framing::Length => format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n"),
            Framing::Chunked => "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_owned(),
        };
        if stream.write_all(head.as_bytes()).await.is_err() {
            return 0;
        }
        let block = vec![b'7'; 64 * 1024];
        let mut written = 0;
        while written < size {
            let frame = match framing {
                Framing::Length => block.clone(),
                Framing::Chunked => [format!("{:x}\r\n", block.len()).as_bytes(), &block, b"\r\n"].concat(),
            };
            if stream.write_all(&frame).await.is_err() {
                return written;
            }
            written += block.len();
        }
        if matches!(framing, Framing::Chunked) {
            let _ = stream.write_all(b"0\r\n\r\n").await;
        }
        written
    });
    (url, task)
}

async fn fetch(url: &str, cap: usize) -> Result<Vec<u8>, BodyError> {
    let client = build_client(&TlsPolicy::Insecure, Duration::from_secs(60)).unwrap();
    let response = client.get(url).send().await.unwrap();
    read_capped(response, cap).await
}

async fn refused_at_the_cap(framing: Framing) {
    let (url, server) = serve(HUGE, framing).await;
    let result = fetch(&url, CAP).await;
    assert!(
        matches!(result, Err(BodyError::TooLarge { cap: CAP })),
        "{:?}",
        result.map(|b| b.len())
    );
    // The connection is dropped, not drained: the server could not send the whole body
    // (what it did send sits in the two sockets' buffers).
    let written = tokio::time::timeout(Duration::from_secs(60), server)
        .await
        .unwrap()
        .unwrap();
    println!("the server wrote {written} of {HUGE} bytes before the bridge hung up");
    assert!(written < HUGE / 2, "the server wrote {written} of {HUGE} bytes");
}

#[tokio::test]
async fn a_60_mb_reply_with_its_length_declared_is_refused_before_reading_it() {
    refused_at_the_cap(Framing::Length).await;
}

#[tokio::test]
async fn a_60_mb_streamed_reply_is_refused_at_the_cap() {
    refused_at_the_cap(Framing::Chunked).await;
}

#[tokio::test]
async fn a_reply_under_the_cap_is_read_whole() {
    for framing in [Framing::Length, Framing::Chunked] {
        let (url, server) = serve(3 * 64 * 1024, framing).await;
        let body = fetch(&url, CAP).await.unwrap();
        assert_eq!(body.len(), 3 * 64 * 1024);
        assert!(body.iter().all(|b| *b == b'7'));
        assert_eq!(server.await.unwrap(), 3 * 64 * 1024);
    }
    assert_eq!(human(CAP), "4 MiB");
    assert_eq!(human(SMALL), "64 KiB");
}
