//! Per-key resources and mutexes. Under construction.
