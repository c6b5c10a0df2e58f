//! Exactly-once execution backed by a store. Under construction.
