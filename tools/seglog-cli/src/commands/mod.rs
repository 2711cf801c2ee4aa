//! One module per command.

pub mod backup;
pub mod compact;
pub mod demo;
pub mod dump;
pub mod events;
pub mod remote;
pub mod remote_inspect;
pub mod repair;
pub mod stats;
pub mod tail;
pub mod verify;
