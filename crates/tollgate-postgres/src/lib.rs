//! PostgreSQL backend for [`tollgate`]'s exactly-once records. (Crate docs: see below.)
#![forbid(unsafe_code)]

mod commit;
pub mod error;
mod notify;
pub mod schema;
mod sql;
mod store;
mod time;
pub mod versioned;

pub use commit::{InTransaction, Writes};
pub use deadpool_postgres;
pub use store::{Builder, PostgresStore, pool};
pub use time::PinnedTime;
pub use tokio_postgres;
pub use tollgate;
