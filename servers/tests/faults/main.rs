//! Faults on 127.0.0.1: the `/admin` routes (off by default, bearer token),
//! abrupt drops of every streaming transport, slow readers (a client that
//! stops reading, one that falls further behind than the history), and a
//! server killed and restarted with the same start epoch.

#[path = "../common/mod.rs"]
mod common;
mod helpers;

mod admin;
mod drops;
mod restart;
mod slow;
