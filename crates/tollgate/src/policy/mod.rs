//! Call policies. Under construction.
