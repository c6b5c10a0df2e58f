//! Redis backend for [`tollgate`]'s exactly-once records.
#![forbid(unsafe_code)]

mod builder;
mod codec;
mod conn;
mod durability;
pub mod error;
mod keys;
mod scripts;
mod store;
mod time;
mod wake;

pub use builder::Builder;
pub use durability::Durability;
pub use error::DurabilityRefused;
pub use redis;
pub use store::RedisStore;
pub use time::ManualTime;
pub use tollgate;
