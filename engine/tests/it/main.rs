//! Integration tests of sdlab-engine, one binary for the crate.

mod api;
mod api_ui;
mod build_reuse;
mod catalog;
mod check_table;
mod dashboards;
mod devcontainer;
mod doctor;
mod fixes;
mod fuzz;
mod learner;
mod load;
mod load_nginx;
mod replica;
mod roles;
mod scenarios_lint;
mod tidy;
