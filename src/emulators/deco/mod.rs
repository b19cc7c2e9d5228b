//! A TP-Link Deco mesh that speaks the LuCI protocol of shared/protocols/deco.md.

pub mod keys;
