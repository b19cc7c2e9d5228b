//! TP-Link Deco mesh.

pub mod crypto;
pub mod etiquette;
pub mod names;
pub mod observe;
pub mod parse;
pub mod protocol;
pub mod session;
