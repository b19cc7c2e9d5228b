//! The emulator's fixed RSA keys. Real Decos seem to keep the password key per firmware family
//! (deco.md §2.1), so fixed keys are faithful; these are test-only keys, not device keys.

use rsa::{BoxedUint, PrivateKey};

use crate::sources::deco::crypto::hex_decode;

/// 1024-bit password key, generated for this emulator with `openssl genrsa 1024`.
const PASSWORD_N: &str = "b5a4db28b89d23a546e24453659a2ebd2ac3091e61c94cdd2fe555e6508b950ac15ba9b9890e5f8d4952c47222ee8657aadad34352f79f477baa185866afccc533154bf99ece526fbcb047b2f3253221d4601355ebb6a472f222e3b70bffc68574268bf7ae5359144772f7be518aa86e8dd7c94f60eb4bda6e4c329f3344ebf5";
const PASSWORD_D: &str = "4bd7081629769aa270451aa8035cebb4d9bcd2fad77337df8616e7d5a0bd96be05db62b2ef918bbdaee69ad4d8d6e44a88309352a1ba77cb5dcbb81c78cb5fe026078e7c9fec44b3fd065ebbd4dd0dcfa9e399c392faecb481211942c97c444ab887f44dd397b809da326eb50d04d0e327b8566f6092b09710eba22219c84285";
const PASSWORD_P: &str = "dbfcef9c426f1aca4d33418b27f411d2bd48eca7b6c8a66be68d15fb49d759a7f41a49fafd06936960f02a542b95b6d5551b7d9cf2c590d5cc50056f191e181b";
const PASSWORD_Q: &str = "d36107f24f2011e4c1e63d913edde909c206a43b7aef063ce126c43d0c160d80b17c87171f96d10c51b24fc0f3f8765d92c78ef9fb8a18d2144225b4b1216d2f";

/// 512-bit sign key: the test-only key of deco.md §9, so its decrypt vector applies here too.
const SIGN_N: &str = "b0412ae1d796060a0b2d5103159ae2cee6271ea2eed4b3f4e2428b38773db226ed1198d547d60926aea11de19270305a4c7ae924ebfb9b2ffef7588aedebcced";
const SIGN_D: &str = "5797eb71d5ac6f4fea8218f2c977f22414e978264d3f5437ed8258a235506a0a6e106ea6d2938b2d52ec975ad6522af3020182104efdfd33204dc552e052a859";

const EXPONENT: u64 = 65537;

fn uint(hex: &str) -> Result<BoxedUint, rsa::Error> {
    hex_decode(hex)
        .map(|b| BoxedUint::from_be_slice_vartime(&b))
        .ok_or(rsa::Error::InvalidArguments)
}

pub fn password_key() -> Result<PrivateKey, rsa::Error> {
    PrivateKey::from_components(
        uint(PASSWORD_N)?,
        BoxedUint::from(EXPONENT),
        uint(PASSWORD_D)?,
        vec![uint(PASSWORD_P)?, uint(PASSWORD_Q)?],
    )
}

pub fn sign_key() -> Result<PrivateKey, rsa::Error> {
    PrivateKey::from_components(uint(SIGN_N)?, BoxedUint::from(EXPONENT), uint(SIGN_D)?, Vec::new())
}
