//! Percent-encoding as routers expect it: everything but RFC 3986 unreserved characters becomes
//! `%XX` (so base64's `+`, `/`, `=` and the ASUS hook list's `;` survive), and decoding that
//! treats `+` as a space and keeps invalid escapes literally, like the routers' own parsers.

pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3 / 2);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_tolerates_bad_escapes() {
        assert_eq!(
            encode("cpu_usage(appobj);netdev(appobj)"),
            "cpu_usage%28appobj%29%3Bnetdev%28appobj%29"
        );
        assert_eq!(encode("YWRtaW46cGFzcw=="), "YWRtaW46cGFzcw%3D%3D");
        for text in ["a+b/c=", "ünïcödé;&=", ""] {
            assert_eq!(decode(&encode(text)), text);
        }
        assert_eq!(decode("a%3D%3"), "a=%3");
        assert_eq!(decode("%zz+x"), "%zz x");
    }
}
