//! Time per password hash and per verification at the parameters the auth service uses
//! (Argon2id, 19 MiB, t=2, p=1). `cargo bench --bench password_hash`

use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let runs = 21;
    let mut hashes = Vec::new();
    let mut phc = String::new();
    for _ in 0..runs {
        let t = Instant::now();
        phc = turtlemen_auth::passwords::hash("correct horse battery staple").unwrap_or_default();
        hashes.push(t.elapsed());
    }
    let mut verifies = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        assert!(turtlemen_auth::passwords::verify("correct horse battery staple", &phc));
        verifies.push(t.elapsed());
    }
    println!(
        "argon2id m=19MiB t=2 p=1: hash median {:.1} ms, verify median {:.1} ms ({runs} runs each)",
        median(hashes).as_secs_f64() * 1000.0,
        median(verifies).as_secs_f64() * 1000.0
    );
}
