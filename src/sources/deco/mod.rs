//! TP-Link Deco mesh.

pub mod crypto;
pub mod etiquette;
pub mod names;
pub mod parse;
pub mod protocol;
