//! The scopes an access token can carry: the one list of every scope the auth service grants,
//! what each lets a client do in words (the consent page shows them), and which of them are
//! the API's.
//!
//! A new API area (comments, channels, subscriptions, notifications…) adds its variants to [`Scope`] and to
//! [`Scope::ALL`]; the auth service then offers them (discovery, authorization, consent), the
//! gateway's first-party client asks for them, and the OpenAPI document lists them — the API
//! handlers name the scope they need with `Scoped<…>` in `turtlemen-api`.

use std::fmt;

/// One scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// OpenID Connect: who the user is (`sub`). Every request carries it.
    OpenId,
    /// The profile claims: username, display name, role.
    Profile,
    /// The email claims.
    Email,
    /// A refresh token: the client keeps access while the user is away.
    OfflineAccess,
    /// Read the user's own videos, private ones included (`/api/v1/me/videos`, a private
    /// video by id).
    VideosRead,
    /// Upload, edit and delete the user's videos (tus uploads, `PATCH`, `DELETE`). Includes
    /// [`Scope::VideosRead`].
    VideosWrite,
    /// Create channels and edit the user's channels (`POST /api/v1/channels`, `PATCH …/{handle}`).
    ChannelsWrite,
    /// See the channels the user follows and their feed (`/api/v1/me/subscriptions`,
    /// `/api/v1/me/feed`).
    SubscriptionsRead,
    /// Follow and unfollow channels (`PUT`/`DELETE /api/v1/me/subscriptions/{handle}`). Includes
    /// [`Scope::SubscriptionsRead`].
    SubscriptionsWrite,
    /// Read the user's notifications, their unread count and notification settings
    /// (`GET /api/v1/me/notifications…`).
    NotificationsRead,
    /// Mark the user's notifications read and change their notification settings
    /// (`POST /api/v1/me/notifications/read`, `PUT …/settings`). Includes
    /// [`Scope::NotificationsRead`].
    NotificationsWrite,
    /// Write, edit and delete the user's comments, like comments, and manage the comments on
    /// the user's videos (pin, remove, approve held ones). Reading comments needs no scope.
    CommentsWrite,
    /// See the user's library: their playlists (private ones and "Watch later" included),
    /// liked videos, ratings and watch history (`GET /api/v1/me/playlists`, `/api/v1/me/history`…).
    LibraryRead,
    /// Change the user's library: rate videos, make and edit playlists, record, remove and
    /// pause their watch history. Includes [`Scope::LibraryRead`].
    LibraryWrite,
    /// See and end the user's sign-in sessions and read their security log (the auth
    /// service's `/auth/api/sessions` and `/auth/api/audit`).
    Account,
    /// Act as an administrator, for users with the admin role (`/api/v1/admin/…`). A user
    /// without the role gains nothing from it.
    Admin,
    /// Act as a moderator, for users with the moderator or admin role: the report queue, hiding
    /// and deleting content, warnings and bans (`/api/v1/admin/reports…`, `/api/v1/admin/users…`).
    /// A user without the role gains nothing from it.
    Moderation,
}

impl Scope {
    /// Every scope, in the order tokens and the consent page list them.
    pub const ALL: &'static [Scope] = &[
        Scope::OpenId,
        Scope::Profile,
        Scope::Email,
        Scope::OfflineAccess,
        Scope::VideosRead,
        Scope::VideosWrite,
        Scope::ChannelsWrite,
        Scope::SubscriptionsRead,
        Scope::SubscriptionsWrite,
        Scope::NotificationsRead,
        Scope::NotificationsWrite,
        Scope::CommentsWrite,
        Scope::LibraryRead,
        Scope::LibraryWrite,
        Scope::Account,
        Scope::Admin,
        Scope::Moderation,
    ];

    /// The scope's name in `scope` strings.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::OpenId => "openid",
            Scope::Profile => "profile",
            Scope::Email => "email",
            Scope::OfflineAccess => "offline_access",
            Scope::VideosRead => "videos:read",
            Scope::VideosWrite => "videos:write",
            Scope::ChannelsWrite => "channels:write",
            Scope::SubscriptionsRead => "subscriptions:read",
            Scope::SubscriptionsWrite => "subscriptions:write",
            Scope::NotificationsRead => "notifications:read",
            Scope::NotificationsWrite => "notifications:write",
            Scope::CommentsWrite => "comments:write",
            Scope::LibraryRead => "library:read",
            Scope::LibraryWrite => "library:write",
            Scope::Account => "account",
            Scope::Admin => "admin",
            Scope::Moderation => "moderation",
        }
    }

    /// The scope named `name`, if we know it.
    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.iter().copied().find(|s| s.as_str() == name)
    }

    /// What the scope lets a client do, in words, for the consent page.
    pub const fn description(self) -> &'static str {
        match self {
            Scope::OpenId => "Know who you are on Turtlemen",
            Scope::Profile => "See your username, display name and role",
            Scope::Email => "See your email address",
            Scope::OfflineAccess => "Stay connected while you are away",
            Scope::VideosRead => "See your videos, including private ones",
            Scope::VideosWrite => "Upload, edit and delete your videos",
            Scope::ChannelsWrite => "Create channels and edit your channels",
            Scope::SubscriptionsRead => "See the channels you follow and their new videos",
            Scope::SubscriptionsWrite => "Follow and unfollow channels for you",
            Scope::NotificationsRead => "See your notifications and notification settings",
            Scope::NotificationsWrite => "Mark your notifications read and change which ones you get",
            Scope::CommentsWrite => "Write, edit and delete comments for you, and manage the comments on your videos",
            Scope::LibraryRead => "See your playlists, liked videos and watch history",
            Scope::LibraryWrite => "Rate videos, manage your playlists and your watch history",
            Scope::Account => "See and end your sign-in sessions and read your security log",
            Scope::Admin => "Manage this Turtlemen instance, if you are an administrator",
            Scope::Moderation => "Handle reports, hide content, warn and ban users, if you are a moderator",
        }
    }

    /// Whether the scope grants access to the API (as opposed to the OpenID Connect scopes,
    /// which shape tokens and claims).
    pub const fn is_api(self) -> bool {
        matches!(
            self,
            Scope::VideosRead
                | Scope::VideosWrite
                | Scope::ChannelsWrite
                | Scope::SubscriptionsRead
                | Scope::SubscriptionsWrite
                | Scope::NotificationsRead
                | Scope::NotificationsWrite
                | Scope::CommentsWrite
                | Scope::LibraryRead
                | Scope::LibraryWrite
                | Scope::Account
                | Scope::Admin
                | Scope::Moderation
        )
    }

    /// The scopes a grant of this one includes besides itself.
    const fn includes(self) -> &'static [Scope] {
        match self {
            Scope::VideosWrite => &[Scope::VideosRead],
            Scope::SubscriptionsWrite => &[Scope::SubscriptionsRead],
            Scope::NotificationsWrite => &[Scope::NotificationsRead],
            Scope::LibraryWrite => &[Scope::LibraryRead],
            _ => &[],
        }
    }

    /// Every API scope: what a first-party client always holds.
    pub fn api() -> impl Iterator<Item = Scope> {
        Scope::ALL.iter().copied().filter(|s| s.is_api())
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of scopes, as a token grants them. Unknown names are dropped when parsing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    /// Every scope: what the gateway's first-party client asks for.
    pub fn all() -> Scopes {
        Scopes(Scope::ALL.to_vec())
    }

    /// The known scopes of a space-separated `scope` string.
    pub fn parse(scope: &str) -> Scopes {
        Scopes::from_iter(scope.split(' ').filter_map(Scope::parse))
    }

    /// Whether the set grants `scope`, itself or through a scope that includes it.
    pub fn grants(&self, scope: Scope) -> bool {
        self.0.iter().any(|s| *s == scope || s.includes().contains(&scope))
    }

    /// Whether the set holds exactly `scope` (no inclusion).
    pub fn contains(&self, scope: Scope) -> bool {
        self.0.contains(&scope)
    }

    /// The set with `more` added.
    pub fn with(mut self, more: impl IntoIterator<Item = Scope>) -> Scopes {
        self.0.extend(more);
        Scopes::from_iter(self.0)
    }

    /// Whether every scope of `other` is granted by this set.
    pub fn covers(&self, other: &Scopes) -> bool {
        other.iter().all(|s| self.grants(s))
    }

    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<Scope> for Scopes {
    /// The set of `scopes`, in [`Scope::ALL`]'s order, each once.
    fn from_iter<I: IntoIterator<Item = Scope>>(scopes: I) -> Scopes {
        let given: Vec<Scope> = scopes.into_iter().collect();
        Scopes(Scope::ALL.iter().copied().filter(|s| given.contains(s)).collect())
    }
}

impl fmt::Display for Scopes {
    /// Space-separated, as in a `scope` parameter or claim.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(s.as_str())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_orders_dedups_and_drops_unknown_names() {
        let s = Scopes::parse("videos:write  openid nonsense openid email");
        assert_eq!(s.to_string(), "openid email videos:write");
        assert!(s.grants(Scope::VideosRead), "write includes read");
        assert!(!s.contains(Scope::VideosRead));
        assert!(!s.grants(Scope::Admin));
        assert!(Scopes::parse("videos:write").covers(&Scopes::parse("videos:read")));
        assert!(!Scopes::parse("videos:read").covers(&Scopes::parse("videos:write")));
    }

    #[test]
    fn every_scope_has_a_distinct_name_and_a_description() {
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.as_str()), Some(*s));
            assert!(!s.description().is_empty());
        }
        assert_eq!(
            Scope::api().map(Scope::as_str).collect::<Vec<_>>(),
            [
                "videos:read",
                "videos:write",
                "channels:write",
                "subscriptions:read",
                "subscriptions:write",
                "notifications:read",
                "notifications:write",
                "comments:write",
                "library:read",
                "library:write",
                "account",
                "admin",
                "moderation"
            ]
        );
    }
}
