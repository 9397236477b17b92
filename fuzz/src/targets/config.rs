//! The configuration file (`turtlemen_config`): the TOML settings, with the gateway's route
//! table, upstream pools and identity providers, resolved into a `Config`.
//!
//! Holds: a file is refused with a typed error that names what is wrong; an accepted file
//! printed again (`Config::to_redacted_toml`, what `turtlemen config` shows) reads back and
//! resolves, and printing that gives the same text (the printer is a fixed point). The two
//! secrets printed whole as `[redacted]` (`cookie_secret`, `smtp_url`) cannot read back as what
//! they were, so the round trip is made without them.

use turtlemen_config::{Config, Settings};

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(mut settings) = toml::from_str::<Settings>(text) else { return };
    if let Err(e) = Config::resolve(settings.clone()) {
        assert!(!e.to_string().is_empty());
    }
    settings.cookie_secret = None;
    settings.smtp_url = None;
    let config = match Config::resolve(settings) {
        Ok(config) => config,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let printed = config.to_redacted_toml();
    let settings = toml::from_str::<Settings>(&printed)
        .unwrap_or_else(|e| panic!("the printed configuration does not read back: {e}\n{printed}"));
    let again = Config::resolve(settings)
        .unwrap_or_else(|e| panic!("the printed configuration does not resolve: {e}\n{printed}"));
    assert_eq!(again.to_redacted_toml(), printed, "printing is not a fixed point");
    assert_eq!(again.routes, config.routes);
    assert_eq!(again.upstreams, config.upstreams);
}
