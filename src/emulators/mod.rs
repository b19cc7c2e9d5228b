//! Protocol-faithful stand-ins for the routers, used by the tests and by `demo`. They follow
//! `shared/protocols/` and serve realistic state that changes over time, with injectable faults.
//! They only ever listen on 127.0.0.1.

pub mod asus;
pub mod deco;
mod server;

pub use server::{Server, TlsIdentity, serve, serve_with};
