//! Per-key resources and mutexes. Under construction.

pub(crate) mod slots;
