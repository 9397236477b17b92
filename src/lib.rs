//! The `turtlemen` binary's library: composes the role crates into one program.
//!
//! - [`cli`]: subcommands and their exit codes;
//! - [`app`]: building and running the roles (all in one process for `serve`, or one alone);
//! - [`data_dir`]: the data folder and the secrets generated into it;
//! - [`signing_keys`]: where the token-signing keys come from at start (the database; older
//!   data dirs imported once; `signing_key_file`), and rotation;
//! - [`logging`]: tracing output, text or JSON;
//! - [`telemetry`]: the OTLP export of request and job spans (`otlp_endpoint`).
//!
//! Integration tests drive the program through [`app`], exactly as `serve` does.

pub mod app;
pub mod cli;
pub mod data_dir;
pub mod health;
pub mod logging;
pub mod signing_keys;
pub mod telemetry;
