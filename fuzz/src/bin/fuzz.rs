//! The AFL++ driver: `fuzz TARGET` runs the named target of [`turtlemen_fuzz::TARGETS`] on
//! AFL++'s inputs in persistent mode (see scripts/fuzz.sh).

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    let Some(target) = turtlemen_fuzz::target(&name) else {
        let names: Vec<&str> = turtlemen_fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
        eprintln!("usage: fuzz TARGET, one of: {}", names.join(", "));
        std::process::exit(2);
    };
    // Without AFL++'s abort-on-panic hook: a panic a parser catches itself (the RTMP reader
    // guards `rml_rtmp`) is not a crash; one that reaches here still is (the driver aborts).
    afl::fuzz_nohook!(|data: &[u8]| {
        target(data);
    });
}
