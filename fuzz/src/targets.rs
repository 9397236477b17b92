//! One module per target; each exposes `run(&[u8])`.

pub mod comment;
pub mod config;
pub mod cookie;
pub mod cursor;
pub mod ffprobe;
pub mod flv;
pub mod http_files;
pub mod image;
pub mod redirect;
pub mod rtmp;
pub mod tus;
