//! The web shell: server-rendered pages and the static assets they use, compiled into the
//! binary.
//!
//! - [`home_page`] and [`error_page`] render full HTML pages from plain view models
//!   ([`HomeView`], [`FeedCard`]); [`video_pages`] renders upload, watch, the creator's list
//!   and the edit form; [`channel_pages`] a channel's page and the subscriptions feed;
//!   [`comment_pages`] the watch page's comments, a thread's page and the held-comments queue;
//!   [`notification_pages`] the notifications page (the bell in the header links to it);
//!   [`search_pages`] the search page; [`library_pages`] ratings, playlists and the history; [`PageContext`] tells a page who is looking and where it is;
//! - [`static_routes`] serves the embedded, content-hashed assets; [`asset_url`] gives a page
//!   an asset's current URL.
//!
//! This crate owns no business logic and reads nothing from the database: handlers elsewhere
//! build the view models. It never fetches anything from a third-party host, and its pages
//! work without JavaScript.

mod assets;
pub mod auth_pages;
pub mod channel_pages;
pub mod comment_pages;
pub mod library_pages;
pub mod live_pages;
pub mod moderation_pages;
pub mod notification_pages;
mod pages;
pub mod recovery_pages;
pub mod search_pages;
pub mod video_pages;
mod views;

pub use assets::{asset_url, static_routes};
pub use pages::{PageContext, error_page, home_page, home_page_for, unread_label};
pub use views::{CategoryLink, FeedCard, HomeView};
