//! Integration tests of sdlab-engine, one binary for the crate.

mod load;
mod api;
mod api_ui;
mod catalog;
mod check_table;
mod build_reuse;
mod doctor;
mod fuzz;
mod scenarios_lint;
mod tidy;
