//! The `turtlemen` binary's library: composes the role crates into one program.
//!
//! - [`cli`]: subcommands and their exit codes;
//! - [`app`]: building and running the roles (all in one process for `serve`, or one alone);
//! - [`data_dir`]: the data folder and the secrets generated into it;
//! - [`signing_keys`]: the RS256 key, retired keys and rotation;
//! - [`logging`]: tracing output, text or JSON.
//!
//! Integration tests drive the program through [`app`], exactly as `serve` does.

pub mod app;
pub mod cli;
pub mod data_dir;
pub mod logging;
pub mod signing_keys;
