//! Who a connection is: the configured users, their roles, and the password checks both
//! protocols' glue uses (RESP `AUTH`/`HELLO … AUTH`, memcached SASL PLAIN and memcached's
//! text-protocol auth `set`).
//!
//! Users come from the configuration: the `default` user (`--requirepass`) and named ones
//! (`--user NAME:ROLE:PASSWORD`). With none of them, authentication is off and every
//! connection is `default` with the admin role, as a Redis without a password is. The
//! `default` user has the admin role unless a named admin exists: a single shared password
//! then behaves as Redis's `requirepass` does (it may run everything), and configuring an
//! admin demotes the shared password to the application's.
//!
//! Passwords are kept only as SHA-1 digests and compared in constant time (`subtle`): a
//! digest has the same length whatever was typed, so neither the comparison's time nor an
//! early exit on a length mismatch tells a guesser anything. SHA-1's known weakness is
//! collisions, which need control of both inputs; here one input is the secret. Every user is
//! compared, so the time does not say which user matched either.
//!
//! What this module deliberately does not do: decide what a role may run (the command
//! tables of each protocol's glue do), count attempts, or slow guessers down (an attempt is
//! one hash; floods are bounded by the connection limit and the small pre-login decoder
//! limits in `conn`).

use std::sync::Arc;

use subtle::ConstantTimeEq;

use crate::config::{Config, Role};

/// The SASL mechanisms offered to memcached binary clients.
pub const SASL_MECHANISMS: &str = "PLAIN";

/// A logged-in (or, with authentication off, implicit) user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user name, for `CLIENT LIST` and `NOPERM` errors.
    pub name: Arc<str>,
    /// What it may run.
    pub role: Role,
}

impl Identity {
    /// What a connection shows (`CLIENT LIST`) before it logs in: `default`, with the app
    /// role. Nothing but the login commands runs before login anyway.
    pub fn before_login() -> Identity {
        Identity {
            name: Arc::from("default"),
            role: Role::App,
        }
    }

    /// Whether the user may run administrative commands.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// One configured user, with its password as a digest.
struct Account {
    identity: Identity,
    digest: [u8; 20],
}

/// The configured users; empty when authentication is off.
pub struct Users {
    accounts: Vec<Account>,
    /// `default` with the admin role: every connection's identity when authentication is
    /// off.
    open: Identity,
}

fn digest(password: &[u8]) -> [u8; 20] {
    sha1_smol::Sha1::from(password).digest().bytes()
}

impl Users {
    /// The users `config` names (see the module docs for the `default` user's role).
    pub fn from_config(config: &Config) -> Users {
        let mut accounts: Vec<Account> = config
            .users
            .iter()
            .map(|user| Account {
                identity: Identity {
                    name: Arc::from(user.name.as_str()),
                    role: user.role,
                },
                digest: digest(user.password.as_bytes()),
            })
            .collect();
        if let Some(password) = &config.requirepass {
            let admin_exists = config.users.iter().any(|u| u.role == Role::Admin);
            accounts.push(Account {
                identity: Identity {
                    name: Arc::from("default"),
                    role: if admin_exists { Role::App } else { Role::Admin },
                },
                digest: digest(password.as_bytes()),
            });
        }
        Users {
            accounts,
            open: Identity {
                name: Arc::from("default"),
                role: Role::Admin,
            },
        }
    }

    /// Whether clients must log in.
    pub fn required(&self) -> bool {
        !self.accounts.is_empty()
    }

    /// A new connection's identity: `default` (admin) when authentication is off, `None`
    /// until it logs in otherwise.
    pub fn initial(&self) -> Option<Identity> {
        (!self.required()).then(|| self.open.clone())
    }

    /// The user `name` if `password` is its password, compared in constant time.
    pub fn check(&self, name: &[u8], password: &[u8]) -> Option<Identity> {
        let given = digest(password);
        let mut found = None;
        // No early exit: every account costs the same, whichever matches.
        for account in &self.accounts {
            let same_name = account.identity.name.as_bytes().ct_eq(name);
            let same_password = account.digest.ct_eq(&given);
            if bool::from(same_name & same_password) {
                found = Some(account.identity.clone());
            }
        }
        found
    }

    /// SASL PLAIN (RFC 4616): `[authzid] NUL authcid NUL passwd`. An authorization identity,
    /// if given, must be the user itself (nobody may act as someone else).
    pub fn check_sasl_plain(&self, data: &[u8]) -> Option<Identity> {
        let mut parts = data.splitn(3, |&b| b == 0);
        let (authzid, user, password) = (parts.next()?, parts.next()?, parts.next()?);
        if !authzid.is_empty() && authzid != user {
            return None;
        }
        self.check(user, password)
    }

    /// memcached's text-protocol token, the data of the auth `set`: `user password`, split
    /// on spaces as memcached's tokenizer does (the first two tokens count, so a password
    /// cannot contain a space there). `Err` with memcached's reason when there are not two
    /// tokens; `Ok(None)` for a wrong name or password.
    pub fn check_text_token(&self, data: &[u8]) -> Result<Option<Identity>, &'static str> {
        let mut tokens = data.split(|&b| b == b' ').filter(|t| !t.is_empty());
        match (tokens.next(), tokens.next()) {
            (Some(user), Some(password)) => Ok(self.check(user, password)),
            _ => Err("bad authentication token format"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::User;

    fn users(requirepass: Option<&str>, named: &[(&str, Role, &str)]) -> Users {
        let config = Config {
            requirepass: requirepass.map(String::from),
            users: named
                .iter()
                .map(|(name, role, password)| User {
                    name: name.to_string(),
                    role: *role,
                    password: password.to_string(),
                })
                .collect(),
            ..Config::default()
        };
        Users::from_config(&config)
    }

    #[test]
    fn without_passwords_everyone_is_the_default_admin() {
        let open = users(None, &[]);
        assert!(!open.required());
        assert_eq!(open.initial().map(|i| i.role), Some(Role::Admin));
        assert_eq!(open.check(b"default", b""), None);
    }

    #[test]
    fn requirepass_alone_is_admin_and_demoted_by_a_named_admin() {
        let alone = users(Some("pw"), &[]);
        assert!(alone.required());
        assert_eq!(alone.initial(), None);
        assert_eq!(alone.check(b"default", b"pw").unwrap().role, Role::Admin);
        let with_admin = users(Some("pw"), &[("ops", Role::Admin, "opspw")]);
        assert_eq!(with_admin.check(b"default", b"pw").unwrap().role, Role::App);
        assert_eq!(
            with_admin.check(b"ops", b"opspw").unwrap().role,
            Role::Admin
        );
        let with_app = users(Some("pw"), &[("web", Role::App, "webpw")]);
        assert_eq!(with_app.check(b"default", b"pw").unwrap().role, Role::Admin);
    }

    #[test]
    fn wrong_names_and_passwords_fail() {
        let u = users(
            Some("pw"),
            &[("web", Role::App, "webpw"), ("ops", Role::Admin, "opspw")],
        );
        assert_eq!(u.check(b"web", b"webpw").unwrap().name.as_ref(), "web");
        // Another user's password, a prefix, an extension, empty, a missing user.
        assert_eq!(u.check(b"web", b"opspw"), None);
        assert_eq!(u.check(b"web", b"webp"), None);
        assert_eq!(u.check(b"web", b"webpwx"), None);
        assert_eq!(u.check(b"web", b""), None);
        assert_eq!(u.check(b"nobody", b"webpw"), None);
        assert_eq!(u.check(b"", b"pw"), None);
        assert_eq!(u.check(&[0xff; 5000], &[0; 100_000]), None);
    }

    #[test]
    fn sasl_plain_and_text_tokens() {
        let u = users(None, &[("web", Role::App, "webpw")]);
        assert!(u.check_sasl_plain(b"\0web\0webpw").is_some());
        assert!(u.check_sasl_plain(b"web\0web\0webpw").is_some());
        // Acting as someone else, a wrong password, garbage.
        assert!(u.check_sasl_plain(b"ops\0web\0webpw").is_none());
        assert!(u.check_sasl_plain(b"\0web\0nope").is_none());
        assert!(u.check_sasl_plain(b"webwebpw").is_none());
        assert!(u.check_sasl_plain(b"\0web").is_none());
        assert!(u.check_sasl_plain(b"").is_none());
        assert!(u.check_sasl_plain(&[0; 4096]).is_none());
        // The password may contain NUL in PLAIN's third field only as data: it is compared.
        assert!(u.check_sasl_plain(b"\0web\0webpw\0").is_none());

        assert!(matches!(u.check_text_token(b"web webpw"), Ok(Some(_))));
        assert!(matches!(
            u.check_text_token(b"web  webpw extra"),
            Ok(Some(_))
        ));
        assert_eq!(u.check_text_token(b"web nope"), Ok(None));
        assert!(u.check_text_token(b"webwebpw").is_err());
        assert!(u.check_text_token(b"").is_err());
        assert!(u.check_text_token(b"   ").is_err());
    }
}
