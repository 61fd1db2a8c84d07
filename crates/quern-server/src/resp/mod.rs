//! The Redis protocol: reading requests and encoding replies.

mod reply;
mod request;

pub use reply::{encode, Protocol, Reply};
pub use request::{RequestLimits, RequestReader};
