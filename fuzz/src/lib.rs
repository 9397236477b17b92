//! Coverage-guided fuzz targets for every parser that takes bytes from outside.
//!
//! Each target is a function of raw bytes that panics when a property the parser promises
//! does not hold: no panic of its own, a refusal that is a typed error (a 4xx for what reaches
//! a client), and parse → print → parse giving the same value where there is a printer. The
//! AFL++ driver (`src/bin/fuzz.rs`, built by `cargo afl build`, run by `scripts/fuzz.sh`) feeds
//! them AFL++'s inputs; the corpus test (`tests/corpus.rs`) replays every file of
//! `fuzz/corpus/<target>` through them in a plain `cargo test`, so each seed and each fixed
//! finding stays a regression test without AFL++.
//!
//! Targets never touch the network, the disk or a clock: an input decides everything, so a
//! crash AFL++ saves replays the same way.

pub mod targets;

/// A fuzz target: panics when a property does not hold for the input.
pub type Target = fn(&[u8]);

/// Every target, by the name used for its corpus folder and on the driver's command line.
pub const TARGETS: &[(&str, Target)] = &[
    ("http_files", targets::http_files::run),
    ("tus", targets::tus::run),
    ("cookie", targets::cookie::run),
    ("redirect", targets::redirect::run),
    ("config", targets::config::run),
    ("ffprobe", targets::ffprobe::run),
    ("image", targets::image::run),
    ("comment", targets::comment::run),
    ("cursor", targets::cursor::run),
    ("flv", targets::flv::run),
    ("rtmp", targets::rtmp::run),
];

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}
