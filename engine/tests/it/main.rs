//! Integration tests of sdlab-engine, one binary for the crate.

mod load;
