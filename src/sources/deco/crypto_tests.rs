//! Known-answer tests from shared/protocols/deco.md §9 (computed there with pycryptodome, the
//! library tplinkrouterc6u uses), plus round trips for the randomised RSA encryption.

use rsa::traits::PublicKeyParts;
use rsa::{BoxedUint, Pkcs1v15Encrypt, PrivateKey};

use super::*;

const KEY: &str = "1415950173028918";
const IV: &str = "5652578606663031";

/// The document's test-only 512-bit key (not a device key).
const N512: &str = "b0412ae1d796060a0b2d5103159ae2cee6271ea2eed4b3f4e2428b38773db226ed1198d547d60926aea11de19270305a4c7ae924ebfb9b2ffef7588aedebcced";
const E512: &str = "10001";
const D512: &str = "5797eb71d5ac6f4fea8218f2c977f22414e978264d3f5437ed8258a235506a0a6e106ea6d2938b2d52ec975ad6522af3020182104efdfd33204dc552e052a859";
const SIGN_HEX: &str = "119b72b0407ae0a31ed1ff590930f0d14f2f600a825166b0818403525ce2476244c99fba8f40eb1c889fd1d4499c72a151d66394f4f854df284b6de54f41ce4d886b220180ebaee6c27e8c8a68fa22fd1c6d2a6e92bc16d7242e443a1340ae0c4aa5402e1a70009abd1cbdaf67130124ee137341290ed2ef7b0e8cb2f6f5a5cb";
const LOGIN_SIGN_TEXT: &str = "k=1415950173028918&i=5652578606663031&h=e3274be5c857fb42ab72d786e281b4b8&s=181835881";

fn uint(hex: &str) -> BoxedUint {
    BoxedUint::from_be_slice_vartime(&hex_decode(hex).unwrap())
}

fn private_512() -> PrivateKey {
    PrivateKey::from_components(uint(N512), uint(E512), uint(D512), Vec::new()).unwrap()
}

/// Decrypts `hex` in blocks of the key's width, the way the Deco reads a signature.
fn decrypt_blocks(key: &PrivateKey, size: usize, hex: &str) -> Vec<u8> {
    assert_eq!(hex.len() % (size * 2), 0, "fixed-width blocks");
    hex.as_bytes()
        .chunks(size * 2)
        .flat_map(|block| {
            let bytes = hex_decode(std::str::from_utf8(block).unwrap()).unwrap();
            key.decrypt(Pkcs1v15Encrypt, &bytes).unwrap()
        })
        .collect()
}

#[test]
fn aes_known_answers() {
    let cases = [
        (
            KEY,
            IV,
            r#"{"operation":"read"}"#,
            "mRPPuc/26mfwKws/pJhpNBE4JuRtjbAI7FI/9E+r9/w=",
        ),
        (
            KEY,
            IV,
            r#"{"operation":"read","params":{"device_mac":"default"}}"#,
            "mRPPuc/26mfwKws/pJhpNBbqHizx4nZQ6n3gkZgfJNRhLjUGBUal3B5sNBpJmZ4lV/3bh4ytR0bZMh1qDxoOvg==",
        ),
        (
            "7249bbedeb5484ef",
            "b8f7df00c554581d",
            r#"{"operation": "read"}"#,
            "DXJcf6SP21st2y7dUKyr4q3iKUTzPQGJ0kGgO3DYvh0=",
        ),
        (
            KEY,
            IV,
            r#"{"error_code":0,"result":{"cpu_usage":0.12,"mem_usage":0.45}}"#,
            "zz4dO8CADQ3ieRyoD5azin7fj9t7tt7qntOxeBsIFdq40Favhdv1+Jbe/5o3oLJM2XvN3QD00gVZUSoZ0GzaNw==",
        ),
    ];
    for (key, iv, plain, data) in cases {
        let aes = AesSession::new(key, iv).unwrap();
        assert_eq!(aes.encrypt_b64(plain.as_bytes()), data, "{plain}");
        assert_eq!(aes.decrypt_b64(data).unwrap(), plain.as_bytes());
    }
}

#[test]
fn aes_rejects_what_it_cannot_decrypt() {
    let aes = AesSession::new(KEY, IV).unwrap();
    assert_eq!(aes.decrypt_b64("not base64!"), Err(CryptoError::NotBase64));
    // 15 bytes: not a whole block.
    assert_eq!(aes.decrypt_b64("AAAAAAAAAAAAAAAAAAAA"), Err(CryptoError::Decrypt));
    let other = AesSession::new("0000000000000000", IV).unwrap();
    assert!(
        other
            .decrypt_b64("mRPPuc/26mfwKws/pJhpNBE4JuRtjbAI7FI/9E+r9/w=")
            .map(|p| p != br#"{"operation":"read"}"#)
            .unwrap_or(true),
        "another key never yields the plaintext"
    );
    assert_eq!(AesSession::new("short", IV), Err(CryptoError::AesKey));
}

#[test]
fn generated_session_keys_are_16_digits_without_leading_zero() {
    for _ in 0..50 {
        let aes = AesSession::generate();
        for s in [aes.key(), aes.iv()] {
            assert_eq!(s.len(), 16);
            assert!(s.bytes().all(|b| b.is_ascii_digit()));
            assert_ne!(s.as_bytes()[0], b'0');
        }
    }
    assert_eq!(format!("{:?}", AesSession::generate()), "AesSession(***)");
}

#[test]
fn md5_known_answers() {
    assert_eq!(auth_hash("admin", "password"), "e3274be5c857fb42ab72d786e281b4b8");
    assert_eq!(auth_hash("admin", "s3cret-pass"), "aca72a4eba29f669480478d405a1a49a");
}

#[test]
fn sign_text_and_seq_known_answers() {
    let data = "mRPPuc/26mfwKws/pJhpNBbqHizx4nZQ6n3gkZgfJNRhLjUGBUal3B5sNBpJmZ4lV/3bh4ytR0bZMh1qDxoOvg==";
    assert_eq!(data.len(), 88);
    let s = sign_seq(181_835_793, data.len());
    assert_eq!(s, 181_835_881);
    let aes = AesSession::new(KEY, IV).unwrap();
    let text = sign_text(Some(&aes), &auth_hash("admin", "password"), s);
    assert_eq!(text, LOGIN_SIGN_TEXT);
    assert_eq!(text.len(), 84);
    let (first, second) = text.split_at(53);
    assert_eq!(first, "k=1415950173028918&i=5652578606663031&h=e3274be5c857f");
    assert_eq!(second, "b42ab72d786e281b4b8&s=181835881");
    assert_eq!(
        sign_text(None, "e3274be5c857fb42ab72d786e281b4b8", s),
        "h=e3274be5c857fb42ab72d786e281b4b8&s=181835881"
    );
}

#[test]
fn rsa_512_decrypt_vector() {
    let key = private_512();
    assert_eq!(decrypt_blocks(&key, 64, SIGN_HEX), LOGIN_SIGN_TEXT.as_bytes());
}

#[test]
fn rsa_512_sign_round_trip_in_53_byte_chunks() {
    let public = RsaKey::from_hex(&N512.to_ascii_uppercase(), "010001").unwrap();
    assert_eq!(public.size(), 64);
    let hex = public.encrypt_hex(LOGIN_SIGN_TEXT.as_bytes()).unwrap();
    assert_eq!(hex.len(), 256, "84 bytes = two 53-byte chunks = 2 × 128 hex digits");
    assert!(hex.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()));
    assert_eq!(decrypt_blocks(&private_512(), 64, &hex), LOGIN_SIGN_TEXT.as_bytes());
    let short = public.encrypt_hex(b"h=e3274be5c857fb42ab72d786e281b4b8&s=1").unwrap();
    assert_eq!(short.len(), 128);
    assert_ne!(
        public.encrypt_hex(b"x").unwrap(),
        public.encrypt_hex(b"x").unwrap(),
        "PKCS#1 v1.5 type 2 is randomised"
    );
}

#[test]
#[cfg(feature = "emulators")]
fn rsa_1024_password_round_trip_and_real_key_parses() {
    let key = crate::emulators::deco::keys::password_key().unwrap();
    let n = hex_encode(&key.as_public_key().n().to_be_bytes());
    let public = RsaKey::from_hex(&n, "010001").unwrap();
    assert_eq!(public.size(), 128);
    let hex = public.encrypt_hex("s3cret-pass".as_bytes()).unwrap();
    assert_eq!(hex.len(), 256);
    assert_eq!(decrypt_blocks(&key, 128, &hex), b"s3cret-pass");
    // Longer than 117 bytes: two blocks, as ha-tplink-deco sends them.
    let long = "p".repeat(130);
    let hex = public.encrypt_hex(long.as_bytes()).unwrap();
    assert_eq!(hex.len(), 512);
    assert_eq!(decrypt_blocks(&key, 128, &hex), long.as_bytes());

    // The X60's real (upper-case) password modulus from the fixture's shape.
    let x60 = "D1E79FF135D14E342D76185C23024E6DEAD4D6EC2C317A526C811E83538EA4E5ED8E1B0EEE5CE26E3C1B6A5F1FE11FA804F28B7E8821CA90AFA5B2F300DF99FDA27C9D2131E031EA11463C47944C05005EF4C1CE932D7F4A87C7563581D9F27F0C305023FCE94997EC7D790696E784357ED803A610EBB71B12A8BE5936429BFD";
    let real = RsaKey::from_hex(x60, "010001").unwrap();
    assert_eq!(real.encrypt_hex(b"pw").unwrap().len(), 256);
}

#[test]
fn bad_keys_are_errors_not_panics() {
    assert_eq!(RsaKey::from_hex("xyz", "010001"), Err(CryptoError::KeyNotHex));
    assert!(matches!(RsaKey::from_hex("", "010001"), Err(CryptoError::Key(_))));
    // 256-bit: below what any Deco uses.
    assert!(matches!(
        RsaKey::from_hex(&"f".repeat(64), "010001"),
        Err(CryptoError::Key(_))
    ));
    // Even modulus.
    assert!(RsaKey::from_hex(&format!("{}e", "f".repeat(127)), "010001").is_err());
}

#[test]
fn hex_helpers() {
    assert_eq!(hex_decode("0aFf"), Some(vec![0x0a, 0xff]));
    assert_eq!(hex_decode("abc"), Some(vec![0x0a, 0xbc]));
    assert_eq!(hex_decode("zz"), None);
    assert_eq!(hex_encode(&[0, 1, 0xab]), "0001ab");
}
