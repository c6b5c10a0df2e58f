//! Circuit breaker. Under construction.
