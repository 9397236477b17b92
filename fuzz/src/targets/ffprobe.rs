//! ffprobe's JSON (`turtlemen_media::Probe::from_json`), which describes an uploaded file and so
//! says whatever the file makes it say, and the limits check on it (`Probe::validate`).
//!
//! Holds: unreadable JSON is `Rejected` (the owner's fault), never `Failed`; a probe the limits
//! accept has a finite, positive length within them, a picture within them and a frame rate
//! that is a finite positive number, since the transcode plan is computed from those.

use turtlemen_media::Limits;
use turtlemen_media::{Probe, ProcessError};

pub fn run(data: &[u8]) {
    let probe = match Probe::from_json(data) {
        Ok(p) => p,
        Err(ProcessError::Rejected(m)) => {
            assert!(!m.is_empty());
            return;
        }
        Err(other) => panic!("unreadable JSON refused as a server fault: {other}"),
    };
    let limits = Limits::default();
    match probe.validate(&limits) {
        Ok(()) => {
            let d = probe.media_duration();
            assert!(d.is_finite() && d > 0.0, "accepted length {d}");
            assert!(probe.duration_secs.is_finite() && probe.duration_secs <= limits.max_duration_secs as f64);
            if let Some(v) = &probe.video {
                assert!(v.width >= 1 && v.height >= 1 && matches!(v.rotation, 0 | 90 | 180 | 270));
                assert!(v.width.max(v.height) <= limits.max_width.max(limits.max_height));
                if let Some(rate) = v.frame_rate {
                    assert!(rate.is_finite() && rate > 0.0, "accepted frame rate {rate}");
                }
                if let Some(d) = v.duration_secs {
                    assert!(d.is_finite() && d >= 0.0);
                }
            }
            if let Some(a) = &probe.audio {
                assert!(a.duration_secs.is_none_or(|d| d.is_finite() && d >= 0.0));
            }
        }
        Err(ProcessError::Rejected(m)) => assert!(!m.is_empty()),
        Err(other) => panic!("a probe refused as a server fault: {other}"),
    }
}
