//! Test and demo equipment, not part of the bridge (cargo feature `emulators`, on by default):
//! protocol-faithful stand-ins for the routers and for vnstat, used by the tests, the benches and
//! `demo`. They follow `shared/protocols/` and serve realistic state that changes over time, with
//! injectable faults. They only ever listen on 127.0.0.1.

pub mod asus;
pub mod deco;
mod server;
pub mod vnstat;

pub use server::{Server, TlsIdentity, serve, serve_with};
