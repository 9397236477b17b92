//! Replays every seed and every saved input of `fuzz/corpus/<target>` through its target, so the
//! corpora are regression tests in a plain `cargo test`, without AFL++.

use std::path::Path;
use turtlemen_fuzz::TARGETS;

#[test]
fn every_target_holds_on_its_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for (name, target) in TARGETS {
        let dir = root.join(name);
        let mut inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{name} has no corpus folder {}: {e}", dir.display()))
            .map(|entry| entry.expect("a readable corpus folder").path())
            .collect();
        inputs.sort();
        assert!(!inputs.is_empty(), "{name}'s corpus is empty");
        for input in inputs {
            let data = std::fs::read(&input).expect("a readable seed");
            // A failing seed names itself before the target's panic message.
            eprintln!("{name}: {}", input.display());
            target(&data);
        }
    }
}

#[test]
fn every_corpus_folder_has_a_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for entry in std::fs::read_dir(root).expect("fuzz/corpus") {
        let name = entry.expect("an entry").file_name().into_string().expect("an ASCII name");
        assert!(turtlemen_fuzz::target(&name).is_some(), "corpus/{name} has no target");
    }
}
