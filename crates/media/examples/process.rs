//! Processes one file as the worker would, into a local store, and prints how long it took
//! and when the video became playable. Also prints the ffmpeg commands the transcode
//! benchmark (`benches/transcode.sh`) compares against.
//!
//!   process [--nice N] [--threads N] [--preset P] [--storage DIR] INPUT
//!   process --print-ladder-command WORK_DIR INPUT      the bare single-pass ladder (no thumbnails)
//!   process --print-rendition-commands WORK_DIR INPUT  one ffmpeg command per rendition

use std::path::PathBuf;
use std::time::Instant;
use turtlemen_media::command::{self, Job};
use turtlemen_media::{Event, ProcessOptions, ladder, probe};
use turtlemen_storage::{Storage, StorageLocation};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut opts = ProcessOptions { nice: 0, ..ProcessOptions::default() };
    let mut storage_dir = None;
    let mut print = None;
    let mut input = None;
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--nice" => opts.nice = value()?.parse()?,
            "--threads" => opts.threads = value()?.parse()?,
            "--preset" => opts.preset = value()?,
            "--storage" => storage_dir = Some(PathBuf::from(value()?)),
            "--print-ladder-command" | "--print-rendition-commands" => {
                print = Some((arg.clone(), PathBuf::from(value()?)));
            }
            _ => input = Some(PathBuf::from(arg)),
        }
    }
    let input = input.ok_or("usage: process [options] INPUT")?;

    if let Some((what, work_dir)) = print {
        let probe = probe(&opts.tools, &input).await?;
        let full = ladder::plan(&probe);
        let ladders: Vec<Vec<ladder::Step>> = if what == "--print-ladder-command" {
            vec![full.clone()]
        } else {
            full.iter().map(|s| vec![s.clone()]).collect()
        };
        for step in &full {
            std::fs::create_dir_all(command::rendition_dir(&work_dir, step))?;
        }
        for ladder in &ladders {
            let job = Job {
                input: &input,
                work_dir: &work_dir,
                probe: &probe,
                ladder,
                segment_secs: opts.segment_secs,
                preset: &opts.preset,
                threads: opts.threads,
                extras: None,
            };
            println!("{}", command::ffmpeg(&opts.tools, opts.nice, &job).shell_words());
        }
        return Ok(());
    }

    let scratch = tempfile::tempdir()?;
    let root = storage_dir.unwrap_or_else(|| scratch.path().join("media"));
    let storage = Storage::open_location(StorageLocation::Local { root }).await?;
    let id = uuid::Uuid::now_v7();
    let started = Instant::now();
    let mut playable_ms = None;
    let done = turtlemen_media::process(&input, &scratch.path().join("work"), &storage, id, &opts, |e| {
        if e == Event::Playable {
            playable_ms = Some(started.elapsed().as_millis());
        }
    })
    .await?;
    let total_ms = started.elapsed().as_millis();
    for r in &done.renditions {
        println!("rendition {} {:?} {} segments, peak {} bit/s, {}", r.name, r.size, r.segments, r.bandwidth, r.codecs);
    }
    println!("duration_s={:.1} playable_ms={} total_ms={total_ms}", done.duration_secs, playable_ms.unwrap_or(0));
    Ok(())
}
