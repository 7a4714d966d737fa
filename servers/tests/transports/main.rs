//! The servers against plain clients (reqwest, tokio-tungstenite, raw
//! sockets) on 127.0.0.1: every transport, the raw-TCP floor included,
//! delivers the schedule's events in order with nothing missing, resumes
//! exactly, rejects bad input with a one-line 400 (or `ERR` line), counts
//! every byte on the wire, and shuts down promptly. Also the `push-server`
//! binary itself.

#[path = "../common/mod.rs"]
mod common;
mod helpers;

mod binary;
mod delivery;
mod fanout;
mod wire;
