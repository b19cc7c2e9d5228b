//! Reading a router's reply body with a size cap (issue 22 §1). A router page is read whole
//! before it is parsed, so a broken or hostile router serving a huge reply (a 60 MB
//! `getTraffic.asp` took the bridge from 15 to 190 MB RSS) would cost that much memory on
//! every poll. Bodies are read chunk by chunk and refused as soon as they pass the cap: a
//! `Content-Length` over it is refused before any of the body is read, and a streamed body
//! without one at the first chunk past it. The connection is then dropped, not drained.
//!
//! Caps are per endpoint (see the callers), several times the largest real reply: a login
//! answer is a few hundred bytes; a client-list reply is under 1 kB per client (a 5,000-client
//! household is about 3 MB), a `getTraffic.asp` entry about 50 bytes.

/// 1 MiB.
pub const MIB: usize = 1 << 20;
/// Login, logout, key exchange and other small replies.
pub const SMALL: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the reply is larger than {} (refused without reading the rest)", human(*.cap))]
    TooLarge { cap: usize },
    #[error(transparent)]
    Transport(#[from] reqwest::Error),
}

/// "4 MiB", "64 KiB".
pub fn human(bytes: usize) -> String {
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{} KiB", bytes.div_ceil(1024))
    }
}

/// The whole body of `response`, or [`BodyError::TooLarge`] once it passes `cap` bytes.
pub async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, BodyError> {
    let declared = response.content_length();
    if declared.is_some_and(|n| n > cap as u64) {
        return Err(BodyError::TooLarge { cap });
    }
    // A declared length is a hint for the buffer only; the body is still counted as it comes.
    let hint = declared.map_or(0, |n| usize::try_from(n).unwrap_or(cap).min(cap));
    let mut body = Vec::with_capacity(hint);
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > cap {
            return Err(BodyError::TooLarge { cap });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
#[path = "body_tests.rs"]
mod tests;
