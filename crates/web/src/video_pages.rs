//! The video pages: upload, watch, the creator's list of videos and the edit form.
//!
//! Plain view models in, full HTML out, like [`crate::pages`]. Handlers (in the API server) fill
//! the models from the database; every text value is escaped by askama, and every URL field is
//! a same-origin path or a signed media URL the handler built from ids, never text a user typed.
//! The pages work without JavaScript: the watch page carries a `<video>` with the HLS source
//! (native HLS plays it), the studio's forms post with a CSRF token. `upload.js`, `watch.js` and
//! `studio.js` (with tus-js-client and hls.js) enhance them.

use crate::pages::{PageContext, Shell, render};
use crate::views::group_thousands;
use askama::Template;

/// The metadata fields shared by the upload and edit forms, as text to refill them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataForm {
    pub title: String,
    pub description: String,
    /// Comma-separated.
    pub tags: String,
    pub category: String,
    pub language: String,
    pub licence: String,
    /// `public`, `unlisted` or `private`.
    pub privacy: String,
}

impl Default for MetadataForm {
    fn default() -> Self {
        Self {
            title: String::new(),
            description: String::new(),
            tags: String::new(),
            category: String::new(),
            language: String::new(),
            licence: String::new(),
            privacy: "public".into(),
        }
    }
}

impl MetadataForm {
    /// The privacy choices: value, label, explanation.
    /// The categories to choose from: (slug, label), in the fixed list's order.
    pub fn category_choices(&self) -> Vec<(&'static str, &'static str)> {
        turtlemen_domain::Category::all().iter().map(|c| (c.slug(), c.label())).collect()
    }

    pub fn privacy_choices(&self) -> [(&'static str, &'static str, &'static str); 3] {
        [
            ("public", "Public", "Anyone can find and watch it."),
            ("unlisted", "Unlisted", "Anyone with the link can watch it; it is not listed."),
            ("private", "Private", "Only you can watch it."),
        ]
    }
}

/// The upload page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadView {
    pub form: MetadataForm,
    /// The largest file accepted, in bytes (0: no limit).
    pub max_bytes: u64,
    /// The uploader's channels (handle, name), first the default; a choice is shown when there
    /// are several.
    pub channels: Vec<(String, String)>,
}

impl UploadView {
    /// The size limit in words, if there is one: `2 GB`.
    pub fn max_label(&self) -> Option<String> {
        (self.max_bytes > 0).then(|| bytes_label(self.max_bytes))
    }
}

/// One rendition in the watch page's quality list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenditionItem {
    pub name: String,
    pub height: u32,
}

/// The watch page.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchView {
    pub id: String,
    pub title: String,
    pub description: String,
    pub channel_name: String,
    /// The channel's page (a same-origin path).
    pub channel_url: String,
    /// The channel's small avatar, if it has one.
    pub channel_avatar_url: Option<String>,
    /// The channel's Subscribe control.
    pub subscribe: Option<crate::channel_pages::SubscribeButton>,
    pub views: u64,
    /// `uploading`, `processing`, `ready` or `failed`.
    pub state: String,
    /// 0–100 while processing.
    pub progress: u8,
    pub failure_reason: Option<String>,
    /// The signed HLS master playlist, once playable — or, for a live's replay not yet ready,
    /// the live's recording as a VOD playlist ([`WatchView::plays_recording`]).
    pub hls_url: Option<String>,
    /// `hls_url` is the recording of the live this video is the replay of: played until the
    /// replay's own transcode is ready, then the page switches to it.
    pub plays_recording: bool,
    pub poster_url: Option<String>,
    /// The WebVTT storyboard (seek thumbnails), once made.
    pub storyboard_url: Option<String>,
    pub duration_secs: Option<u32>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub renditions: Vec<RenditionItem>,
    /// The publication (or creation) date, `YYYY-MM-DD`.
    pub date: String,
    /// The viewer may edit it: show the edit link.
    pub can_edit: bool,
    /// The comments section ([`crate::comment_pages`]).
    pub comments: Option<crate::comment_pages::CommentsSection>,
    /// Why the video is hidden, for its owner and moderators (`None`: it is not).
    pub hidden_notice: Option<String>,
    /// The "Report" form (not for the video's owner).
    pub report: Option<crate::moderation_pages::ReportForm>,
    /// The page's own path, for the forms to come back to.
    pub return_to: String,
    /// Rating, watch later, playlists, resume position ([`crate::library_pages`]).
    pub library: crate::library_pages::WatchLibrary,
    /// The live this video is the replay of: its chat is shown in step with the player.
    pub replay_chat_live: Option<String>,
}

impl WatchView {
    pub fn views_label(&self) -> String {
        views_label(self.views)
    }

    pub fn processing(&self) -> bool {
        self.state == "processing" || self.state == "uploading"
    }

    /// The page's status text while the video is not ready.
    pub fn status_label(&self) -> Option<String> {
        match self.state.as_str() {
            "uploading" => Some("Uploading…".into()),
            "processing" if self.plays_recording => Some(format!(
                "Processing: {}% — playing the live's recording until the replay is ready.",
                self.progress
            )),
            "processing" if self.hls_url.is_some() => {
                Some(format!("Processing: {}% — you can watch what is ready so far.", self.progress))
            }
            "processing" => Some(format!("Processing: {}%", self.progress)),
            "failed" => Some(format!(
                "Processing failed: {}",
                self.failure_reason.as_deref().unwrap_or("the file could not be converted.")
            )),
            _ => None,
        }
    }

    /// Width and height for the `<video>` element (16:9 until known).
    pub fn frame(&self) -> (u32, u32) {
        match (self.width, self.height) {
            (Some(w), Some(h)) if w > 0 && h > 0 => (w, h),
            _ => (1280, 720),
        }
    }
}

/// One row of the creator's list.
#[derive(Debug, Clone, PartialEq)]
pub struct StudioRow {
    pub id: String,
    pub title: String,
    pub privacy: String,
    pub state: String,
    pub progress: u8,
    pub failure_reason: Option<String>,
    pub thumbnail_url: Option<String>,
    pub duration_secs: Option<u32>,
    pub views: u64,
    pub watch_url: String,
}

impl StudioRow {
    pub fn views_label(&self) -> String {
        views_label(self.views)
    }

    pub fn duration_label(&self) -> Option<String> {
        self.duration_secs.map(clock)
    }

    /// The state in words: `Ready`, `Processing 42%`, `Uploading`, `Failed`.
    pub fn state_label(&self) -> String {
        match self.state.as_str() {
            "processing" => format!("Processing {}%", self.progress),
            "uploading" => "Uploading".into(),
            "ready" => "Ready".into(),
            _ => "Failed".into(),
        }
    }

    pub fn privacy_label(&self) -> &'static str {
        match self.privacy.as_str() {
            "public" => "Public",
            "unlisted" => "Unlisted",
            _ => "Private",
        }
    }
}

/// The creator's list of videos.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StudioView {
    pub rows: Vec<StudioRow>,
    /// The CSRF token for the delete forms.
    pub csrf: String,
    /// A one-line message after an action ("Video deleted.").
    pub notice: Option<String>,
}

/// The edit form of one video.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EditView {
    pub id: String,
    pub form: MetadataForm,
    pub csrf: String,
    /// Why the last submission was refused, if it was.
    pub error: Option<String>,
    /// The last submission was saved.
    pub saved: bool,
    pub watch_url: String,
    /// `open`, `closed` or `held`.
    pub comment_policy: String,
}

impl EditView {
    /// The comment policies to choose from: value, label, explanation.
    pub fn comment_policy_choices(&self) -> [(&'static str, &'static str, &'static str); 3] {
        [
            ("open", "Open", "Anyone signed in can comment."),
            ("held", "Held for review", "New comments wait until you approve them."),
            ("closed", "Closed", "Nobody can comment; existing comments stay."),
        ]
    }
}

#[derive(Template)]
#[template(path = "upload.html")]
struct UploadPage<'a> {
    shell: Shell,
    view: &'a UploadView,
    form: &'a MetadataForm,
    /// tus-js-client, loaded by `upload.js` when a file is chosen.
    tus_url: &'static str,
}

#[derive(Template)]
#[template(path = "watch.html")]
struct WatchPage<'a> {
    shell: Shell,
    view: &'a WatchView,
}

#[derive(Template)]
#[template(path = "studio_videos.html")]
struct StudioPage<'a> {
    shell: Shell,
    view: &'a StudioView,
}

#[derive(Template)]
#[template(path = "edit_video.html")]
struct EditPage<'a> {
    shell: Shell,
    view: &'a EditView,
    form: &'a MetadataForm,
}

fn fallback() -> String {
    "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Turtlemen</title>\
     <main><h1>Turtlemen</h1><p>This page could not be shown; please try again.</p></main></html>"
        .into()
}

/// The upload page (`upload.js` does the uploading, with tus-js-client fetched on demand).
pub fn upload_page(view: &UploadView, ctx: &PageContext) -> String {
    let shell = Shell::for_page("/upload", ctx, &["upload.js"]);
    let tus_url = crate::asset_url("tus.min.js").unwrap_or_default();
    render(&UploadPage { shell, view, form: &view.form, tus_url }, "upload", fallback)
}

/// The watch page (hls.js and `watch.js` drive the player; hls.js only where there is a source
/// or one may come while processing).
pub fn watch_page(view: &WatchView, ctx: &PageContext) -> String {
    let scripts: &[&str] = match (view.hls_url.is_some() || view.processing(), view.replay_chat_live.is_some()) {
        (true, false) => &["hls.min.js", "watch.js", "comments.js", "library.js"],
        (true, true) => &["hls.min.js", "watch.js", "comments.js", "library.js", "chat.js"],
        (false, false) => &["watch.js", "comments.js", "library.js"],
        (false, true) => &["watch.js", "comments.js", "library.js", "chat.js"],
    };
    render(&WatchPage { shell: Shell::for_page("", ctx, scripts), view }, "watch", fallback)
}

/// The creator's videos.
pub fn studio_page(view: &StudioView, ctx: &PageContext) -> String {
    let shell = Shell::for_page("/studio/videos", ctx, &["studio.js"]);
    render(&StudioPage { shell, view }, "studio", fallback)
}

/// The edit form of one video.
pub fn edit_page(view: &EditView, ctx: &PageContext) -> String {
    render(&EditPage { shell: Shell::for_page("", ctx, &[]), view, form: &view.form }, "edit", fallback)
}

fn views_label(n: u64) -> String {
    let g = group_thousands(n);
    if n == 1 { format!("{g} view") } else { format!("{g} views") }
}

fn clock(s: u32) -> String {
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 { format!("{h}:{m:02}:{s:02}") } else { format!("{m}:{s:02}") }
}

/// `1536` → `1.5 KB` (powers of 1000, as file managers show sizes).
pub fn bytes_label(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} bytes") } else { format!("{value:.1} {}", UNITS[unit]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> PageContext {
        PageContext {
            viewer: Some("Ann <the creator>".into()),
            path: "/videos/abc?t=1".into(),
            sign_out_token: Some("tok\"en".into()),
            unread: None,
        }
    }

    fn watch(state: &str, hls: bool) -> WatchView {
        WatchView {
            id: "0193".into(),
            title: "A <b>bold</b> title".into(),
            description: "Line one\nLine two".into(),
            channel_name: "Ann".into(),
            channel_url: "/@ann".into(),
            channel_avatar_url: None,
            subscribe: None,
            views: 1234,
            state: state.into(),
            progress: 42,
            failure_reason: None,
            hls_url: hls.then(|| "/media/1-x/videos/0193/hls/master.m3u8".into()),
            poster_url: hls.then(|| "/media/1-x/videos/0193/poster.jpg".into()),
            storyboard_url: None,
            duration_secs: Some(6),
            width: Some(640),
            height: Some(360),
            renditions: vec![RenditionItem { name: "360p".into(), height: 360 }],
            date: "2026-11-26".into(),
            can_edit: false,
            comments: None,
            hidden_notice: None,
            report: None,
            return_to: "/videos/0193".into(),
            library: Default::default(),
            replay_chat_live: None,
            plays_recording: false,
        }
    }

    #[test]
    fn the_watch_page_has_a_video_the_text_and_no_raw_html() {
        let html = watch_page(&watch("ready", true), &ctx());
        assert!(html.contains("<video"), "{html}");
        assert!(html.contains("src=\"/media/1-x/videos/0193/hls/master.m3u8\""), "{html}");
        assert!(html.contains("type=\"application/vnd.apple.mpegurl\""));
        assert!(html.contains("poster=\"/media/1-x/videos/0193/poster.jpg\""));
        assert!(!html.contains("<b>bold</b>"), "titles are escaped");
        assert!(html.contains("1,234 views"));
        assert!(html.contains("hls.min."), "the player script is loaded");
        assert!(html.contains("watch."));
        assert!(!html.contains("Processing"), "{html}");
        // The signed-in viewer's name, escaped, and a sign-out form instead of "Sign in".
        assert!(html.contains("Ann &#60;the creator&#62;") || html.contains("Ann &lt;the creator&gt;"), "{html}");
        assert!(html.contains("action=\"/oauth2/sign_out\""));
        assert!(html.contains("name=\"token\" value=\"tok&"), "the session's sign-out token");
        assert!(!html.contains("tok\"en"), "escaped");
        assert!(!html.contains("Sign in</a>"));
    }

    #[test]
    fn a_processing_video_says_so_and_a_failed_one_says_why() {
        let html = watch_page(
            &watch("processing", false),
            &PageContext { path: "/videos/x".into(), ..PageContext::default() },
        );
        assert!(html.contains("Processing: 42%"), "{html}");
        assert!(!html.contains("<source"), "no source before it is playable");
        assert!(html.contains("href=\"/oauth2/start?rd=/videos/x\""), "sign in comes back here: {html}");
        let mut failed = watch("failed", false);
        failed.failure_reason = Some("no video stream".into());
        let html = watch_page(&failed, &ctx());
        assert!(html.contains("Processing failed: no video stream"), "{html}");
        assert!(!html.contains("hls.min."), "no player script for a failed video");
    }

    #[test]
    fn the_studio_lists_videos_with_state_and_csrf_forms() {
        let row = StudioRow {
            id: "v1".into(),
            title: "Mine".into(),
            privacy: "unlisted".into(),
            state: "failed".into(),
            progress: 0,
            failure_reason: Some("bad file".into()),
            thumbnail_url: None,
            duration_secs: None,
            views: 1,
            watch_url: "/videos/v1".into(),
        };
        let view = StudioView { rows: vec![row], csrf: "tok&en".into(), notice: Some("Video deleted.".into()) };
        let html = studio_page(&view, &ctx());
        assert!(html.contains("Unlisted"));
        assert!(html.contains("Failed"));
        assert!(html.contains("bad file"));
        assert!(html.contains("1 view"));
        assert!(html.contains("action=\"/studio/videos/v1/delete\""), "{html}");
        assert!(html.contains("href=\"/studio/videos/v1/edit\""));
        assert!(html.contains("name=\"csrf\" value=\"tok&#38;en\"") || html.contains("value=\"tok&amp;en\""), "{html}");
        assert!(html.contains("Video deleted."));
        let empty = studio_page(&StudioView::default(), &ctx());
        assert!(empty.contains("class=\"empty\""), "{empty}");
    }

    #[test]
    fn the_edit_and_upload_forms_refill_their_fields() {
        let form = MetadataForm {
            title: "T \"q\"".into(),
            tags: "a, b".into(),
            privacy: "unlisted".into(),
            ..MetadataForm::default()
        };
        let view = EditView {
            id: "v1".into(),
            form: form.clone(),
            csrf: "c".into(),
            error: Some("title: too long".into()),
            saved: false,
            watch_url: "/videos/v1".into(),
            comment_policy: "held".into(),
        };
        let html = edit_page(&view, &ctx());
        assert!(html.contains("name=\"comment_policy\" value=\"held\" checked"), "{html}");
        assert!(html.contains("action=\"/studio/videos/v1/edit\""));
        assert!(html.contains("value=\"T &#34;q&#34;\"") || html.contains("value=\"T &quot;q&quot;\""), "{html}");
        assert!(html.contains("value=\"unlisted\" checked"), "{html}");
        assert!(html.contains("title: too long"));
        let html = upload_page(&UploadView { form, max_bytes: 2_000_000_000, channels: Vec::new() }, &ctx());
        assert!(html.contains("type=\"file\""));
        assert!(html.contains("2.0 GB"), "{html}");
        assert!(html.contains("data-tus-src=\"/static/tus.min."), "the uploader, fetched on demand: {html}");
        assert!(html.contains("upload."));
    }

    #[test]
    fn sizes_read_like_a_file_manager() {
        assert_eq!(bytes_label(999), "999 bytes");
        assert_eq!(bytes_label(1536), "1.5 KB");
        assert_eq!(bytes_label(45_600_000), "45.6 MB");
    }
}
