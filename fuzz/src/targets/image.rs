//! Avatar and banner uploads (`turtlemen_images::decode`): the header check of the pixel count
//! before any decoding, then the decode of one still picture.
//!
//! Holds: every refusal is the file's fault (a 4xx); an accepted picture is within the side and
//! pixel limits and is 8-bit RGB (what the renditions are made from).

use turtlemen_images::{MAX_BYTES, MAX_PIXELS, MAX_SIDE, decode};

pub fn run(data: &[u8]) {
    // The upload handler refuses a larger body before it gets here.
    if data.len() > MAX_BYTES {
        return;
    }
    match decode(data) {
        Ok(image) => {
            let (w, h) = (image.width(), image.height());
            assert!(w >= 1 && h >= 1 && w <= MAX_SIDE && h <= MAX_SIDE, "{w}×{h}");
            assert!(u64::from(w) * u64::from(h) <= MAX_PIXELS, "{w}×{h}");
            assert!(image.as_rgb8().is_some(), "not flattened to RGB: {:?}", image.color());
        }
        Err(e) => assert!(e.is_client_error(), "an upload refused as a server fault: {e}"),
    }
}
