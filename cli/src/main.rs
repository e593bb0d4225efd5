//! The `sdlab` command.
fn main() {}
