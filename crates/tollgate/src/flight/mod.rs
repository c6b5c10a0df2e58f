//! Per-key coalescing (single-flight). Under construction.
