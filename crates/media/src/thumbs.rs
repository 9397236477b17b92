//! The poster and the storyboard: which frames they take and how the storyboard's WebVTT
//! track names its tiles. Pure arithmetic; the frames themselves come out of the ladder's
//! ffmpeg run (see [`crate::command`]).
//!
//! The storyboard is one JPEG sprite of at most [`MAX_TILES`] tiles, [`COLUMNS`] to a row,
//! one tile every `interval` seconds (a whole number, at least 1); its track has one cue per
//! tile, `storyboard.jpg#xywh=x,y,w,h`, relative to the track so it works under any base URL.

use std::fmt::Write;

/// Tiles in the storyboard at most.
pub const MAX_TILES: u32 = 100;
/// Tiles per row.
pub const COLUMNS: u32 = 10;
/// The long side of a tile, in pixels.
pub const TILE_LONG_SIDE: u32 = 160;
/// The long side of the poster at most, in pixels.
pub const POSTER_LONG_SIDE: u32 = 1280;

/// The storyboard's layout.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Storyboard {
    /// Seconds between tiles.
    pub interval: u32,
    pub tiles: u32,
    pub columns: u32,
    pub rows: u32,
    pub tile_width: u32,
    pub tile_height: u32,
    /// The length the cues cover, in seconds.
    pub duration: f64,
}

impl Storyboard {
    /// The layout for a picture of `width`×`height` lasting `duration` seconds.
    pub fn plan(width: u32, height: u32, duration: f64) -> Storyboard {
        let duration = duration.max(0.001);
        let interval = ((duration / MAX_TILES as f64).ceil() as u32).max(1);
        let tiles = ((duration / interval as f64).ceil() as u32).clamp(1, MAX_TILES);
        let columns = tiles.min(COLUMNS);
        let rows = tiles.div_ceil(columns);
        let (tile_width, tile_height) = fit(width, height, TILE_LONG_SIDE);
        Storyboard { interval, tiles, columns, rows, tile_width, tile_height, duration }
    }

    /// The WebVTT track: tile `i` covers `[i·interval, (i+1)·interval)`, the last one up to
    /// the end.
    pub fn vtt(&self, sprite_name: &str) -> String {
        let mut out = String::from("WEBVTT\n");
        for i in 0..self.tiles {
            let start = (i * self.interval) as f64;
            let end = if i + 1 == self.tiles { self.duration } else { ((i + 1) * self.interval) as f64 };
            let (x, y) = ((i % self.columns) * self.tile_width, (i / self.columns) * self.tile_height);
            let (w, h) = (self.tile_width, self.tile_height);
            let _ = write!(out, "\n{} --> {}\n{sprite_name}#xywh={x},{y},{w},{h}\n", timestamp(start), timestamp(end));
        }
        out
    }
}

/// Where the poster is taken: a quarter in, at most ten seconds in (past fades from black,
/// early enough to exist in a clip of any length).
pub fn poster_time(duration: f64) -> f64 {
    (duration * 0.25).min(10.0)
}

/// The poster's size: the picture's, shrunk to a long side of [`POSTER_LONG_SIDE`].
pub fn poster_size(width: u32, height: u32) -> (u32, u32) {
    fit(width, height, POSTER_LONG_SIDE)
}

/// `width`×`height` shrunk (never grown) to a long side of `long`, even sides.
fn fit(width: u32, height: u32, long: u32) -> (u32, u32) {
    let scale = (long as f64 / width.max(height) as f64).min(1.0);
    let side = |n: u32| ((((n as f64 * scale) / 2.0).round() as u32) * 2).max(2);
    (side(width), side(height))
}

/// `HH:MM:SS.mmm`.
fn timestamp(secs: f64) -> String {
    let ms = (secs * 1000.0).round() as u64;
    format!("{:02}:{:02}:{:02}.{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_follow_the_length() {
        let short = Storyboard::plan(1920, 1080, 3.5);
        assert_eq!((short.interval, short.tiles, short.columns, short.rows), (1, 4, 4, 1));
        assert_eq!((short.tile_width, short.tile_height), (160, 90));
        let long = Storyboard::plan(1080, 1920, 2.0 * 3600.0);
        assert_eq!((long.interval, long.tiles, long.columns, long.rows), (72, 100, 10, 10));
        assert_eq!((long.tile_width, long.tile_height), (90, 160));
        let exact = Storyboard::plan(320, 240, 20.0);
        assert_eq!((exact.tiles, exact.rows, exact.tile_width, exact.tile_height), (20, 2, 160, 120));
        let tiny = Storyboard::plan(100, 80, 0.5);
        assert_eq!((tiny.tiles, tiny.tile_width, tiny.tile_height), (1, 100, 80));
    }

    #[test]
    fn the_track_covers_the_whole_length_with_relative_sprite_references() {
        let vtt = Storyboard::plan(640, 360, 12.5).vtt("storyboard.jpg");
        assert!(vtt.starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nstoryboard.jpg#xywh=0,0,160,90\n"));
        assert!(vtt.contains("00:00:10.000 --> 00:00:11.000\nstoryboard.jpg#xywh=0,90,160,90\n"));
        assert!(vtt.ends_with("00:00:12.000 --> 00:00:12.500\nstoryboard.jpg#xywh=320,90,160,90\n"));
        assert_eq!(vtt.matches(" --> ").count(), 13);
    }

    #[test]
    fn posters_are_early_and_not_upscaled() {
        assert_eq!(poster_time(4.0), 1.0);
        assert_eq!(poster_time(3600.0), 10.0);
        assert_eq!(poster_size(3840, 2160), (1280, 720));
        assert_eq!(poster_size(640, 360), (640, 360));
        assert_eq!(poster_size(1080, 1920), (720, 1280));
    }
}
