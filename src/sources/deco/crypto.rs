//! The Deco's LuCI crypto (shared/protocols/deco.md §2–3): RSA PKCS#1 v1.5 for the password and
//! the request signature, AES-128-CBC for bodies, MD5 for the auth hash. Client side only; the
//! emulator adds the private-key half.

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use md5::{Digest, Md5};
use rsa::{BoxedUint, Pkcs1v15Encrypt, PublicKey};

/// PKCS#1 v1.5 type-2 padding takes 11 bytes of every block.
const PKCS1_OVERHEAD: usize = 11;
/// The Deco's keys are 1024-bit (password) and 512-bit (sign); anything outside this range is
/// not a Deco key.
const KEY_BITS: std::ops::RangeInclusive<usize> = 512..=4096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("the RSA key is not hex")]
    KeyNotHex,
    #[error("the RSA key is unusable: {0}")]
    Key(String),
    #[error("RSA encryption failed: {0}")]
    Encrypt(String),
    #[error("the AES key and IV must be 16 ASCII characters each")]
    AesKey,
    #[error("the encrypted data is not base64")]
    NotBase64,
    #[error("the encrypted data does not decrypt with this session's key (wrong length or padding)")]
    Decrypt,
}

/// A public RSA key as the Deco hands it out: modulus and exponent as hex.
#[derive(Clone, PartialEq, Eq)]
pub struct RsaKey {
    key: PublicKey,
    size: usize,
}

impl std::fmt::Debug for RsaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RsaKey({} bits)", self.size * 8)
    }
}

impl RsaKey {
    /// Parses `["<modulus hex>", "<exponent hex>"]`; hex case does not matter (the X60 sends
    /// upper case).
    pub fn from_hex(modulus: &str, exponent: &str) -> Result<Self, CryptoError> {
        let n = strip_leading_zeros(hex_decode(modulus).ok_or(CryptoError::KeyNotHex)?);
        let e = strip_leading_zeros(hex_decode(exponent).ok_or(CryptoError::KeyNotHex)?);
        if n.is_empty() || e.is_empty() {
            return Err(CryptoError::Key("empty modulus or exponent".into()));
        }
        let size = n.len();
        let key = PublicKey::new_with_size_limits(
            BoxedUint::from_be_slice_vartime(&n),
            BoxedUint::from_be_slice_vartime(&e),
            KEY_BITS,
        )
        .map_err(|e| CryptoError::Key(e.to_string()))?;
        Ok(Self { key, size })
    }

    /// Modulus size in bytes (64 for the sign key, 128 for the password key).
    pub fn size(&self) -> usize {
        self.size
    }

    /// PKCS#1 v1.5 over `plaintext` in chunks of `size − 11` bytes, each block written as
    /// fixed-width lower-case hex and joined: the form every Deco client sends.
    pub fn encrypt_hex(&self, plaintext: &[u8]) -> Result<String, CryptoError> {
        let chunk = self.size - PKCS1_OVERHEAD;
        let mut out = String::with_capacity(plaintext.len().div_ceil(chunk) * self.size * 2);
        let mut rng = rand::rng();
        for part in plaintext.chunks(chunk) {
            let block = self
                .key
                .encrypt(&mut rng, Pkcs1v15Encrypt, part)
                .map_err(|e| CryptoError::Encrypt(e.to_string()))?;
            // Keep leading zero bytes: the Deco splits the hex at fixed block widths.
            for _ in block.len()..self.size {
                out.push_str("00");
            }
            out.push_str(&hex_encode(&block));
        }
        Ok(out)
    }
}

/// The session's AES-128-CBC key and IV: 16 ASCII characters each, used as raw bytes. They are
/// told to the Deco once, in the login signature, and used for every body in both directions.
#[derive(Clone, PartialEq, Eq)]
pub struct AesSession {
    key: String,
    iv: String,
}

impl std::fmt::Debug for AesSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesSession(***)")
    }
}

impl AesSession {
    pub fn new(key: &str, iv: &str) -> Result<Self, CryptoError> {
        let ok = |s: &str| s.len() == 16 && s.bytes().all(|b| b.is_ascii_graphic());
        if !ok(key) || !ok(iv) {
            return Err(CryptoError::AesKey);
        }
        Ok(Self {
            key: key.to_owned(),
            iv: iv.to_owned(),
        })
    }

    /// A fresh key and IV of 16 decimal digits without a leading zero: the most widely used
    /// form (ha-tplink-deco), accepted by every Deco firmware we know of.
    pub fn generate() -> Self {
        let digits = || {
            let value: u64 = rand::random_range(1_000_000_000_000_000..10_000_000_000_000_000);
            value.to_string()
        };
        Self {
            key: digits(),
            iv: digits(),
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn iv(&self) -> &str {
        &self.iv
    }

    fn cipher_parts(&self) -> ([u8; 16], [u8; 16]) {
        let mut key = [0u8; 16];
        let mut iv = [0u8; 16];
        key.copy_from_slice(self.key.as_bytes());
        iv.copy_from_slice(self.iv.as_bytes());
        (key, iv)
    }

    /// AES-128-CBC with PKCS#7, then standard base64: the `data` field.
    pub fn encrypt_b64(&self, plaintext: &[u8]) -> String {
        let (key, iv) = self.cipher_parts();
        let cipher = cbc::Encryptor::<aes::Aes128>::new(&key.into(), &iv.into());
        STANDARD.encode(cipher.encrypt_padded_vec::<Pkcs7>(plaintext))
    }

    /// Decrypted in the buffer the base64 was decoded into: a 5 000-client list is ~1.5 MB,
    /// and a second buffer for the plaintext was a copy per poll (issue 11).
    pub fn decrypt_b64(&self, data: &str) -> Result<Vec<u8>, CryptoError> {
        let mut bytes = STANDARD.decode(data.trim()).map_err(|_| CryptoError::NotBase64)?;
        let (key, iv) = self.cipher_parts();
        let cipher = cbc::Decryptor::<aes::Aes128>::new(&key.into(), &iv.into());
        let len = cipher
            .decrypt_padded::<Pkcs7>(&mut bytes)
            .map_err(|_| CryptoError::Decrypt)?
            .len();
        bytes.truncate(len);
        Ok(bytes)
    }
}

/// `h`: lower-case hex MD5 of username and password, joined without a separator.
pub fn auth_hash(username: &str, password: &str) -> String {
    let mut md5 = Md5::new();
    md5.update(username.as_bytes());
    md5.update(password.as_bytes());
    hex_encode(&md5.finalize())
}

/// `s`: the `auth` seq plus the length of the base64 `data` text. The seq never moves during a
/// session; only the data length changes.
pub fn sign_seq(seq: u64, data_b64_len: usize) -> u64 {
    seq.saturating_add(data_b64_len as u64)
}

/// The signature plaintext. The login carries `k` and `i` (that is how the Deco learns the AES
/// key); later calls send only `h` and `s`.
pub fn sign_text(session: Option<&AesSession>, hash: &str, s: u64) -> String {
    match session {
        Some(aes) => format!("k={}&i={}&h={hash}&s={s}", aes.key, aes.iv),
        None => format!("h={hash}&s={s}"),
    }
}

pub fn hex_encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Case-insensitive; an odd number of digits is read as if a leading `0` were there.
pub fn hex_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    let digits: Vec<u8> = text
        .bytes()
        .map(|c| char::from(c).to_digit(16).and_then(|d| u8::try_from(d).ok()))
        .collect::<Option<_>>()?;
    let mut out = Vec::with_capacity(digits.len().div_ceil(2));
    let mut iter = digits.iter();
    if digits.len() % 2 == 1 {
        out.push(*iter.next()?);
    }
    while let (Some(hi), Some(lo)) = (iter.next(), iter.next()) {
        out.push(hi << 4 | lo);
    }
    Some(out)
}

fn strip_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    bytes.drain(..zeros);
    bytes
}

#[cfg(test)]
#[path = "crypto_tests.rs"]
mod tests;
