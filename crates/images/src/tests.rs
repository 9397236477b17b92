//! Unit tests: ordinary images come out at the fixed sizes with no metadata; hostile ones are
//! refused for the right reason.

use super::*;
use crate::fixtures;
use image::ImageDecoder;

fn decode_jpeg(bytes: &[u8]) -> (DynamicImage, Option<Vec<u8>>) {
    let mut d = JpegDecoder::new(Cursor::new(bytes)).expect("a JPEG");
    let exif = d.exif_metadata().expect("metadata read");
    (DynamicImage::from_decoder(d).expect("decodes"), exif)
}

#[test]
fn png_becomes_avatar_renditions_at_fixed_sizes() {
    let out = process(&fixtures::png(300, 200), Kind::Avatar).expect("accepted");
    let sizes: Vec<_> = out.iter().map(|r| (r.width, r.height)).collect();
    assert_eq!(sizes, AVATAR_SIZES);
    for r in &out {
        let (img, exif) = decode_jpeg(&r.jpeg);
        assert_eq!((img.width(), img.height()), (r.width, r.height));
        assert_eq!(exif, None);
    }
}

#[test]
fn banner_renditions_are_wide() {
    let out = process(&fixtures::jpeg(1000, 400, None), Kind::Banner).expect("accepted");
    let sizes: Vec<_> = out.iter().map(|r| (r.width, r.height)).collect();
    assert_eq!(sizes, BANNER_SIZES);
}

#[test]
fn exif_gps_is_gone_and_orientation_applied() {
    let original = fixtures::jpeg(200, 100, Some(fixtures::exif_with_gps(6)));
    // The input really carries the position.
    let (_, exif_in) = decode_jpeg(&original);
    let exif_in = exif_in.expect("input has EXIF");
    assert!(exif_in.windows(2).any(|w| w == [0x25, 0x88]), "GPS pointer present");
    let out = process(&original, Kind::Avatar).expect("accepted");
    let big = &out[0];
    assert!(!big.jpeg.windows(4).any(|w| w == b"Exif"), "no EXIF segment");
    assert!(!big.jpeg.windows(2).any(|w| w == [0xFF, 0xE1]), "no APP1 segment");
    let (img, exif) = decode_jpeg(&big.jpeg);
    assert_eq!(exif, None);
    let rgb = img.to_rgb8();
    // Orientation 6 turns the picture 90° clockwise: the red left half is on top now.
    let top = rgb.get_pixel(200, 20).0;
    let bottom = rgb.get_pixel(50, 230).0;
    assert!(top[0] > 200 && top[2] < 60, "top is red: {top:?}");
    assert!(bottom[2] > 200 && bottom[0] < 60, "bottom is blue: {bottom:?}");
}

#[test]
fn transparency_is_laid_over_white() {
    let mut img = RgbaImage::from_pixel(64, 64, image::Rgba([0, 0, 0, 0]));
    img.put_pixel(0, 0, image::Rgba([0, 0, 0, 255]));
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(&img, 64, 64, image::ExtendedColorType::Rgba8)
        .expect("png");
    let out = process(&png, Kind::Avatar).expect("accepted");
    let (decoded, _) = decode_jpeg(&out[0].jpeg);
    let p = decoded.to_rgb8().get_pixel(128, 128).0;
    assert!(p.iter().all(|&c| c > 240), "white, not black: {p:?}");
}

use image::{ImageEncoder, RgbaImage};

#[test]
fn still_gif_and_webp_are_accepted() {
    for bytes in [fixtures::still_gif(), fixtures::webp(40, 20)] {
        let out = process(&bytes, Kind::Avatar).expect("accepted");
        assert_eq!(out.len(), 3);
    }
}

#[test]
fn non_images_are_refused() {
    for bytes in [&b""[..], b"hello, world", b"<svg xmlns='http://www.w3.org/2000/svg'/>", b"%PDF-1.7\n"] {
        let err = process(bytes, Kind::Avatar).expect_err("refused");
        assert!(matches!(err, ImageError::NotAnImage), "{err:?}");
        assert_eq!(err.code(), "not_an_image");
    }
}

#[test]
fn truncated_files_are_refused() {
    let png = fixtures::png(300, 200);
    let jpeg = fixtures::jpeg(300, 200, None);
    for bytes in [&png[..png.len() / 2], &jpeg[..jpeg.len() / 2], &jpeg[..jpeg.len() - 2]] {
        let err = process(bytes, Kind::Avatar).expect_err("refused");
        assert!(matches!(err, ImageError::Truncated), "{err:?}");
        assert_eq!(err.code(), "image_truncated");
    }
}

#[test]
fn decompression_bomb_is_refused_by_the_header_check() {
    let bomb = fixtures::png_bomb(30_000);
    assert!(bomb.len() < 200 * 1024, "{} bytes", bomb.len());
    // The refusal is the header check's (not the allocation fence's): TooManyPixels carries the
    // dimensions read from the header, before any pixel buffer exists.
    let err = decode(&bomb).expect_err("refused");
    assert!(matches!(err, ImageError::TooManyPixels { width: 30_000, height: 30_000 }), "{err:?}");
    assert_eq!(err.code(), "image_too_large");
    // And the file is a real image: a small one written the same way is accepted.
    assert!(process(&fixtures::png_bomb(64), Kind::Avatar).is_ok());
}

#[test]
fn dimension_limits() {
    assert!(check_dimensions(4096, 4096).is_ok());
    assert!(check_dimensions(MAX_SIDE, 1024).is_ok());
    assert!(matches!(check_dimensions(4097, 4096), Err(ImageError::TooManyPixels { .. })));
    assert!(matches!(check_dimensions(MAX_SIDE + 1, 1), Err(ImageError::TooManyPixels { .. })));
    assert!(matches!(check_dimensions(0, 10), Err(ImageError::Damaged(_))));
}

#[test]
fn animated_files_are_refused() {
    for (name, bytes) in
        [("gif", fixtures::animated_gif()), ("apng", fixtures::apng()), ("webp", fixtures::animated_webp())]
    {
        let err = process(&bytes, Kind::Avatar).expect_err(name);
        assert!(matches!(err, ImageError::Animated), "{name}: {err:?}");
        assert_eq!(err.code(), "animated_image");
    }
}

#[tokio::test]
async fn processor_runs_off_the_executor() {
    let p = Processor::new(1);
    let (a, b) =
        tokio::join!(p.process(fixtures::png(64, 64), Kind::Avatar), p.process(b"nope".to_vec(), Kind::Banner));
    assert_eq!(a.expect("accepted").len(), 3);
    assert!(matches!(b, Err(ImageError::NotAnImage)));
}
