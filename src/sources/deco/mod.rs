//! TP-Link Deco mesh.

pub mod crypto;
