//! Channel avatars and banners: an uploaded file checked, decoded and re-encoded at fixed sizes.
//!
//! What a client sends is never stored or served. [`process`] takes the bytes of a PNG, JPEG,
//! GIF or WebP file (the caller has already capped their number: see [`MAX_BYTES`]) and returns
//! new JPEG files made from the decoded pixels alone, so nothing of the original's metadata (EXIF
//! with a GPS position, XMP, comments, colour profiles) survives:
//!
//! 1. The format is recognised from the first bytes; anything else is [`ImageError::NotAnImage`].
//! 2. The decoder reads the header only, and the dimensions it states are checked against
//!    [`MAX_SIDE`] and [`MAX_PIXELS`] *before* any pixel buffer exists, so a 30,000 × 30,000 PNG
//!    of 50 KB is refused without allocating its 3.6 GB ([`ImageError::TooManyPixels`]).
//! 3. Animated files (APNG, animated WebP, a GIF of more than one frame) are refused with a
//!    reason ([`ImageError::Animated`]) rather than silently cut to their first frame.
//! 4. Decoding runs under `image::Limits` with [`MAX_DECODE_ALLOC`] as a second fence, should a
//!    decoder allocate more than the header promised.
//! 5. The EXIF orientation is applied, transparency is laid over white, and each rendition is
//!    cropped to fill its size and encoded as JPEG (quality [`JPEG_QUALITY`]).
//!
//! JPEG, not WebP: the `image` crate's WebP encoder is lossless only (photos would come out
//! several times larger than as JPEG), and a lossy WebP encoder means binding libwebp's C code.
//! Every browser shows a JPEG.
//!
//! [`Processor`] runs [`process`] on the blocking pool behind a small semaphore, so at most
//! [`DEFAULT_CONCURRENCY`] decodes (each up to [`MAX_DECODE_ALLOC`]) hold memory at a time, and
//! the async executor never decodes. This crate knows nothing of HTTP, storage or channels.

use image::codecs::gif::GifDecoder;
use image::codecs::jpeg::{JpegDecoder, JpegEncoder};
use image::codecs::png::PngDecoder;
use image::codecs::webp::WebPDecoder;
use image::imageops::FilterType;
use image::{AnimationDecoder, DynamicImage, ImageDecoder, ImageFormat, Limits, RgbImage};
use std::io::Cursor;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// The most bytes an uploaded image may have (callers stop reading past it).
pub const MAX_BYTES: usize = 2 * 1024 * 1024;
/// The longest side accepted.
pub const MAX_SIDE: u32 = 16_384;
/// The most pixels accepted (4096 × 4096): 64 MiB once decoded to 8-bit RGBA.
pub const MAX_PIXELS: u64 = 4096 * 4096;
/// The most a decoder may allocate (`image::Limits::max_alloc`): a 16-bit RGBA image of
/// [`MAX_PIXELS`] plus room for the decoder's own buffers.
pub const MAX_DECODE_ALLOC: u64 = 160 * 1024 * 1024;
/// JPEG quality of every rendition.
pub const JPEG_QUALITY: u8 = 85;
/// Decodes running at once in a [`Processor`] made by `Processor::default()`.
pub const DEFAULT_CONCURRENCY: usize = 2;

/// What an image is for, which decides its renditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A square picture: [`AVATAR_SIZES`].
    Avatar,
    /// A wide strip across the top of the channel page: [`BANNER_SIZES`].
    Banner,
}

/// Avatar renditions, largest first (square).
pub const AVATAR_SIZES: [(u32, u32); 3] = [(256, 256), (96, 96), (48, 48)];
/// Banner renditions, largest first.
pub const BANNER_SIZES: [(u32, u32); 2] = [(1920, 320), (960, 160)];

impl Kind {
    /// The sizes made for this kind, largest first.
    pub fn sizes(self) -> &'static [(u32, u32)] {
        match self {
            Kind::Avatar => &AVATAR_SIZES,
            Kind::Banner => &BANNER_SIZES,
        }
    }

    /// `avatar` or `banner`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Avatar => "avatar",
            Kind::Banner => "banner",
        }
    }
}

/// One re-encoded file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendition {
    pub width: u32,
    pub height: u32,
    /// A baseline JPEG with no metadata segment.
    pub jpeg: Vec<u8>,
}

/// Why an upload was refused (or, for the last two, why processing failed on our side).
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("The file is not an image: send a PNG, JPEG, GIF or WebP file.")]
    NotAnImage,
    #[error(
        "The image is {width} × {height} pixels; at most {MAX_PIXELS} pixels and {MAX_SIDE} on a side are accepted."
    )]
    TooManyPixels { width: u32, height: u32 },
    #[error("Decoding the image needed more memory than allowed; send a smaller image.")]
    TooMuchMemory,
    #[error("The file ends before the image does: it is truncated.")]
    Truncated,
    #[error("Animated images are not accepted: send a still image.")]
    Animated,
    #[error("The image could not be decoded: {0}")]
    Damaged(String),
    #[error("encoding a rendition failed")]
    Encode(#[source] image::ImageError),
    #[error("image processing was interrupted")]
    Interrupted,
}

impl ImageError {
    /// The stable code an API client switches on.
    pub fn code(&self) -> &'static str {
        match self {
            ImageError::NotAnImage => "not_an_image",
            ImageError::TooManyPixels { .. } | ImageError::TooMuchMemory => "image_too_large",
            ImageError::Truncated => "image_truncated",
            ImageError::Animated => "animated_image",
            ImageError::Damaged(_) => "invalid_image",
            ImageError::Encode(_) | ImageError::Interrupted => "image_processing_failed",
        }
    }

    /// Whether the file is at fault (a 4xx), not us.
    pub fn is_client_error(&self) -> bool {
        !matches!(self, ImageError::Encode(_) | ImageError::Interrupted)
    }

    /// A decoder's error, classified.
    fn from_decoding(e: image::ImageError) -> ImageError {
        match e {
            image::ImageError::Limits(_) => ImageError::TooMuchMemory,
            image::ImageError::IoError(ref io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                ImageError::Truncated
            }
            other => {
                let text = other.to_string();
                let lower = text.to_ascii_lowercase();
                // The png and gif crates report a cut-off stream as a decoding error.
                if lower.contains("eof") || lower.contains("end of") || lower.contains("unexpected end") {
                    ImageError::Truncated
                } else {
                    ImageError::Damaged(text)
                }
            }
        }
    }
}

/// The limits every decoder runs under: the allocation fence only, since the dimensions are
/// checked by [`check_dimensions`] itself, before decoding.
fn decode_limits() -> Limits {
    let mut limits = Limits::no_limits();
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    limits
}

/// The header check: refuses dimensions past [`MAX_SIDE`] or [`MAX_PIXELS`] (and empty images).
pub fn check_dimensions(width: u32, height: u32) -> Result<(), ImageError> {
    if width == 0 || height == 0 {
        return Err(ImageError::Damaged("the image has no pixels".into()));
    }
    if width > MAX_SIDE || height > MAX_SIDE || u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ImageError::TooManyPixels { width, height });
    }
    Ok(())
}

/// The accepted format of `bytes`, from its signature.
fn format_of(bytes: &[u8]) -> Result<ImageFormat, ImageError> {
    match image::guess_format(bytes) {
        Ok(f @ (ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Gif | ImageFormat::WebP)) => Ok(f),
        _ => Err(ImageError::NotAnImage),
    }
}

/// A JPEG whose last scan is not followed by the end-of-image marker was cut off. (The JPEG
/// decoder is lenient and would paint the missing rows grey.) Inside entropy-coded data a 0xFF
/// byte is always followed by 0x00 or a restart marker, so `FF DA` (start of scan) and `FF D9`
/// (end of image) there are markers.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last_scan = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    match last_scan {
        Some(at) => bytes[at..].windows(2).any(|w| w == [0xFF, 0xD9]),
        None => false,
    }
}

/// Reads the header, checks it, and decodes the single still picture of `bytes`, oriented.
pub fn decode(bytes: &[u8]) -> Result<DynamicImage, ImageError> {
    let format = format_of(bytes)?;
    let mut image = match format {
        ImageFormat::Png => {
            let decoder =
                PngDecoder::with_limits(Cursor::new(bytes), decode_limits()).map_err(ImageError::from_decoding)?;
            let (w, h) = decoder.dimensions();
            check_dimensions(w, h)?;
            if decoder.is_apng().map_err(ImageError::from_decoding)? {
                return Err(ImageError::Animated);
            }
            still(decoder)?
        }
        ImageFormat::Jpeg => {
            if !jpeg_is_complete(bytes) {
                return Err(ImageError::Truncated);
            }
            let mut decoder = JpegDecoder::new(Cursor::new(bytes)).map_err(ImageError::from_decoding)?;
            let (w, h) = decoder.dimensions();
            check_dimensions(w, h)?;
            decoder.set_limits(decode_limits()).map_err(ImageError::from_decoding)?;
            still(decoder)?
        }
        ImageFormat::WebP => {
            let mut decoder = WebPDecoder::new(Cursor::new(bytes)).map_err(ImageError::from_decoding)?;
            let (w, h) = decoder.dimensions();
            check_dimensions(w, h)?;
            if decoder.has_animation() {
                return Err(ImageError::Animated);
            }
            decoder.set_limits(decode_limits()).map_err(ImageError::from_decoding)?;
            still(decoder)?
        }
        _ => {
            // GIF: the logical screen bounds every frame the decoder composes.
            let mut decoder = GifDecoder::new(Cursor::new(bytes)).map_err(ImageError::from_decoding)?;
            let (w, h) = decoder.dimensions();
            check_dimensions(w, h)?;
            decoder.set_limits(decode_limits()).map_err(ImageError::from_decoding)?;
            let mut frames = decoder.into_frames();
            let first = match frames.next() {
                Some(frame) => frame.map_err(ImageError::from_decoding)?,
                None => return Err(ImageError::Damaged("the GIF has no frame".into())),
            };
            if frames.next().is_some() {
                return Err(ImageError::Animated);
            }
            DynamicImage::ImageRgba8(first.into_buffer())
        }
    };
    // Square the dimensions again after orientation (a rotation swaps them; the count is equal).
    check_dimensions(image.width(), image.height())?;
    image = flatten(image);
    Ok(image)
}

/// Decodes one still picture and applies its EXIF orientation.
fn still(mut decoder: impl ImageDecoder) -> Result<DynamicImage, ImageError> {
    let orientation = decoder.orientation().map_err(ImageError::from_decoding)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(ImageError::from_decoding)?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// 8-bit RGB with any transparency laid over white (JPEG has no alpha channel).
fn flatten(image: DynamicImage) -> DynamicImage {
    if !image.color().has_alpha() {
        return DynamicImage::ImageRgb8(image.into_rgb8());
    }
    let rgba = image.into_rgba8();
    let mut out = RgbImage::new(rgba.width(), rgba.height());
    for (dst, src) in out.pixels_mut().zip(rgba.pixels()) {
        let [r, g, b, a] = src.0;
        let over = |c: u8| -> u8 {
            let (c, a) = (u32::from(c), u32::from(a));
            // (c·a + 255·(255 − a)) / 255, rounded; never above 255.
            u8::try_from((c * a + 255 * (255 - a) + 127) / 255).unwrap_or(u8::MAX)
        };
        dst.0 = [over(r), over(g), over(b)];
    }
    DynamicImage::ImageRgb8(out)
}

/// Crops `image` to fill each of `kind`'s sizes and encodes each as JPEG.
pub fn render(image: &DynamicImage, kind: Kind) -> Result<Vec<Rendition>, ImageError> {
    let mut out = Vec::with_capacity(kind.sizes().len());
    // Smaller renditions are made from the largest one, which is much cheaper than from the
    // original and loses nothing visible.
    let mut source: Option<DynamicImage> = None;
    for &(width, height) in kind.sizes() {
        let from = source.as_ref().unwrap_or(image);
        let resized = from.resize_to_fill(width, height, FilterType::CatmullRom);
        let mut jpeg = Vec::new();
        JpegEncoder::new_with_quality(&mut jpeg, JPEG_QUALITY).encode_image(&resized).map_err(ImageError::Encode)?;
        out.push(Rendition { width, height, jpeg });
        if source.is_none() {
            source = Some(resized);
        }
    }
    Ok(out)
}

/// [`decode`] then [`render`]: the renditions of an uploaded file, largest first.
pub fn process(bytes: &[u8], kind: Kind) -> Result<Vec<Rendition>, ImageError> {
    render(&decode(bytes)?, kind)
}

/// Runs [`process`] off the async executor, at most a few at a time.
#[derive(Debug, Clone)]
pub struct Processor {
    permits: Arc<Semaphore>,
}

impl Default for Processor {
    fn default() -> Self {
        Processor::new(DEFAULT_CONCURRENCY)
    }
}

impl Processor {
    /// A processor running at most `concurrency` (at least one) decodes at once.
    pub fn new(concurrency: usize) -> Processor {
        Processor { permits: Arc::new(Semaphore::new(concurrency.max(1))) }
    }

    /// The renditions of `bytes`, made on the blocking pool once a permit is free.
    pub async fn process(&self, bytes: Vec<u8>, kind: Kind) -> Result<Vec<Rendition>, ImageError> {
        let _permit = self.permits.acquire().await.map_err(|_| ImageError::Interrupted)?;
        tokio::task::spawn_blocking(move || process(&bytes, kind)).await.map_err(|_| ImageError::Interrupted)?
    }
}

#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
#[cfg(test)]
mod tests;
