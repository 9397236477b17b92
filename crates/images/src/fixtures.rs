//! Test images, ordinary and hostile, made on the spot (no binary files in the repository):
//! plain PNG and JPEG, a JPEG whose EXIF carries an orientation and a GPS position, a
//! decompression bomb, and animated GIF, APNG and WebP files.
//!
//! Built for this crate's tests and, with the `fixtures` feature, for the integration tests.
//! Nothing here is used by the server.

use image::codecs::gif::GifEncoder;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::{Delay, ExtendedColorType, Frame, ImageEncoder, Rgba, RgbaImage};

/// A `width` × `height` picture: left half red, right half blue (so a rotation shows).
pub fn halves(width: u32, height: u32) -> RgbaImage {
    RgbaImage::from_fn(
        width,
        height,
        |x, _| if x < width / 2 { Rgba([255, 0, 0, 255]) } else { Rgba([0, 0, 255, 255]) },
    )
}

/// An 8-bit RGBA PNG of [`halves`].
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let img = halves(width, height);
    let mut out = Vec::new();
    #[allow(clippy::expect_used)] // Encoding a small in-memory image into a Vec cannot fail.
    PngEncoder::new(&mut out).write_image(&img, width, height, ExtendedColorType::Rgba8).expect("png encodes");
    out
}

/// A JPEG of [`halves`], with `exif` (a TIFF structure) in an APP1 segment when given.
pub fn jpeg(width: u32, height: u32, exif: Option<Vec<u8>>) -> Vec<u8> {
    let rgb = image::DynamicImage::ImageRgba8(halves(width, height)).into_rgb8();
    let mut out = Vec::new();
    let mut enc = JpegEncoder::new_with_quality(&mut out, 90);
    if let Some(exif) = exif {
        #[allow(clippy::expect_used)] // The JPEG encoder supports EXIF.
        enc.set_exif_metadata(exif).expect("jpeg takes exif");
    }
    #[allow(clippy::expect_used)] // As above.
    enc.write_image(&rgb, width, height, ExtendedColorType::Rgb8).expect("jpeg encodes");
    out
}

/// EXIF (little-endian TIFF) with `Orientation` = `orientation` and a GPS position of
/// 48°51′29″ N, 2°17′40″ E.
pub fn exif_with_gps(orientation: u16) -> Vec<u8> {
    fn entry(out: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: [u8; 4]) {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&value);
    }
    const SHORT: u16 = 3;
    const LONG: u16 = 4;
    const ASCII: u16 = 2;
    const RATIONAL: u16 = 5;
    // Layout: header (8) · IFD0 at 8 (2 entries: 30 bytes) · GPS IFD at 38 (4 entries: 54
    // bytes) · latitude at 92 · longitude at 116.
    let (ifd0, gps, lat, lon) = (8u32, 38u32, 92u32, 116u32);
    let mut t = b"II*\0".to_vec();
    t.extend_from_slice(&ifd0.to_le_bytes());
    t.extend_from_slice(&2u16.to_le_bytes());
    let o = orientation.to_le_bytes();
    entry(&mut t, 0x0112, SHORT, 1, [o[0], o[1], 0, 0]);
    entry(&mut t, 0x8825, LONG, 1, gps.to_le_bytes());
    t.extend_from_slice(&0u32.to_le_bytes());
    t.extend_from_slice(&4u16.to_le_bytes());
    entry(&mut t, 0x0001, ASCII, 2, *b"N\0\0\0");
    entry(&mut t, 0x0002, RATIONAL, 3, lat.to_le_bytes());
    entry(&mut t, 0x0003, ASCII, 2, *b"E\0\0\0");
    entry(&mut t, 0x0004, RATIONAL, 3, lon.to_le_bytes());
    t.extend_from_slice(&0u32.to_le_bytes());
    for n in [48u32, 51, 29, 2, 17, 40] {
        t.extend_from_slice(&n.to_le_bytes());
        t.extend_from_slice(&1u32.to_le_bytes());
    }
    debug_assert_eq!(t.len(), 140);
    t
}

/// A valid 1-bit greyscale PNG of `side` × `side` zero pixels, written row by row through
/// the png crate's streaming writer with its strongest compression: 30,000 × 30,000 (3.6 GB
/// once decoded to RGBA) comes to about 110 KB.
pub fn png_bomb(side: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, side, side);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::One);
        enc.set_compression(png::Compression::High);
        #[allow(clippy::expect_used)] // Writing into a Vec cannot fail.
        let mut writer = enc.write_header().expect("png header");
        #[allow(clippy::expect_used)] // As above.
        let mut stream = writer.stream_writer().expect("png stream");
        let row = vec![0u8; side.div_ceil(8) as usize];
        for _ in 0..side {
            #[allow(clippy::expect_used)] // As above.
            std::io::Write::write_all(&mut stream, &row).expect("png row");
        }
        #[allow(clippy::expect_used)] // As above.
        stream.finish().expect("png end");
    }
    out
}

/// A two-frame animated GIF.
pub fn animated_gif() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = GifEncoder::new(&mut out);
        let frames = [Rgba([255, 0, 0, 255]), Rgba([0, 0, 255, 255])]
            .map(|c| Frame::from_parts(RgbaImage::from_pixel(16, 16, c), 0, 0, Delay::from_numer_denom_ms(100, 1)));
        #[allow(clippy::expect_used)] // Writing into a Vec cannot fail.
        enc.encode_frames(frames).expect("gif frames");
    }
    out
}

/// A one-frame GIF (a still picture).
pub fn still_gif() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = GifEncoder::new(&mut out);
        #[allow(clippy::expect_used)] // Writing into a Vec cannot fail.
        enc.encode_frame(Frame::new(halves(40, 20))).expect("gif frame");
    }
    out
}

/// A two-frame APNG.
pub fn apng() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, 8, 8);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        #[allow(clippy::expect_used)] // Writing into a Vec cannot fail.
        enc.set_animated(2, 0).expect("apng");
        #[allow(clippy::expect_used)] // As above.
        let mut writer = enc.write_header().expect("png header");
        for shade in [0u8, 255] {
            #[allow(clippy::expect_used)] // As above.
            writer.write_image_data(&[shade; 8 * 8 * 3]).expect("apng frame");
        }
        #[allow(clippy::expect_used)] // As above.
        writer.finish().expect("png end");
    }
    out
}

/// A lossless still WebP of [`halves`].
pub fn webp(width: u32, height: u32) -> Vec<u8> {
    let img = halves(width, height);
    let mut out = Vec::new();
    #[allow(clippy::expect_used)] // Encoding into a Vec cannot fail.
    WebPEncoder::new_lossless(&mut out).write_image(&img, width, height, ExtendedColorType::Rgba8).expect("webp");
    out
}

/// An animated WebP of two frames (VP8X with the animation flag, ANIM, two ANMF chunks each
/// holding the VP8L bitstream of a still 8 × 8 WebP), assembled by hand: the encoder makes
/// stills only.
pub fn animated_webp() -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, fourcc: &[u8; 4], payload: &[u8]) {
        out.extend_from_slice(fourcc);
        out.extend_from_slice(&u32::try_from(payload.len()).unwrap_or(0).to_le_bytes());
        out.extend_from_slice(payload);
        if payload.len() % 2 == 1 {
            out.push(0);
        }
    }
    fn u24(v: u32) -> [u8; 3] {
        let b = v.to_le_bytes();
        [b[0], b[1], b[2]]
    }
    let still = webp(8, 8);
    // A still lossless WebP is RIFF, size, WEBP, then one VP8L chunk: keep that chunk whole.
    let vp8l = &still[12..];
    let mut body = b"WEBP".to_vec();
    let mut vp8x = vec![0x02 | 0x10, 0, 0, 0];
    vp8x.extend_from_slice(&u24(7));
    vp8x.extend_from_slice(&u24(7));
    chunk(&mut body, b"VP8X", &vp8x);
    chunk(&mut body, b"ANIM", &[0, 0, 0, 0, 0, 0]);
    for _ in 0..2 {
        let mut anmf = Vec::new();
        anmf.extend_from_slice(&u24(0));
        anmf.extend_from_slice(&u24(0));
        anmf.extend_from_slice(&u24(7));
        anmf.extend_from_slice(&u24(7));
        anmf.extend_from_slice(&u24(100));
        anmf.push(0);
        anmf.extend_from_slice(vp8l);
        chunk(&mut body, b"ANMF", &anmf);
    }
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&u32::try_from(body.len()).unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&body);
    out
}
