//! PostgreSQL connection strings, in URL and `key=value` form, as libpq reads them.
//!
//! Every part of a URL is percent-decoded once, as bytes, so a password such as `a+b`, `p&ss`,
//! `p@ss` or `a:b` (or their `%2B`, `%26`, `%40`, `%3A` spellings) is read exactly. Errors
//! name the part that is wrong and never repeat the password.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use percent_encoding::percent_decode_str;

use crate::error::{Error, Result};
use crate::values::SESSION_SETTINGS;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(text: &str) -> Result<Self> {
        Ok(match text {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(Error::ConnectionString(format!(
                    "sslmode `{other}` is not one of disable, allow, prefer, require, verify-ca, verify-full"
                )));
            }
        })
    }

    /// Whether a connection without TLS is acceptable under this mode.
    pub fn allows_plaintext(self) -> bool {
        matches!(self, SslMode::Disable | SslMode::Allow | SslMode::Prefer)
    }

    /// The mode as libpq spells it.
    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// libpq's `channel_binding`: whether SCRAM must bind itself to the TLS session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChannelBinding {
    Disable,
    /// Bind when the server offers SCRAM-SHA-256-PLUS over TLS (libpq's default).
    #[default]
    Prefer,
    /// Refuse to log in any other way than SCRAM-SHA-256-PLUS.
    Require,
}

impl ChannelBinding {
    fn parse(text: &str) -> Result<Self> {
        Ok(match text {
            "disable" => ChannelBinding::Disable,
            "prefer" => ChannelBinding::Prefer,
            "require" => ChannelBinding::Require,
            other => {
                return Err(Error::ConnectionString(format!(
                    "channel_binding `{other}` is not one of disable, prefer, require"
                )));
            }
        })
    }

    fn name(self) -> &'static str {
        match self {
            ChannelBinding::Disable => "disable",
            ChannelBinding::Prefer => "prefer",
            ChannelBinding::Require => "require",
        }
    }
}

/// The files TLS reads: libpq's `sslrootcert` (a PEM file, or `system`), `sslcert` and
/// `sslkey` (a client certificate and its key, both PEM).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsFiles {
    pub root_cert: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// A parsed PostgreSQL connection string.
#[derive(Clone, PartialEq, Eq)]
pub struct PgConfig {
    pub host: String,
    pub port: u16,
    pub user: String,
    password: String,
    pub dbname: String,
    pub sslmode: SslMode,
    pub tls_files: TlsFiles,
    pub channel_binding: ChannelBinding,
    pub application_name: Option<String>,
    pub connect_timeout: Option<Duration>,
}

impl fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl PgConfig {
    /// Parses `postgres[ql]://user:password@host:port/dbname?sslmode=…` or
    /// `host=… port=… user=… password='…' dbname=… sslmode=…`.
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        let mut builder = Builder::default();
        if let Some(rest) = text
            .strip_prefix("postgresql://")
            .or_else(|| text.strip_prefix("postgres://"))
        {
            parse_url(rest, &mut builder)?;
        } else if text.contains("://") {
            let scheme = text.split("://").next().unwrap_or_default();
            return Err(Error::ConnectionString(format!(
                "unsupported scheme `{scheme}` (expected postgresql://)"
            )));
        } else {
            parse_key_values(text, &mut builder)?;
        }
        builder.build()
    }

    /// The password, for the connections this crate opens and for a Debezium connector's
    /// configuration.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The connection string as a URL with the password replaced by `****`.
    pub fn redacted(&self) -> String {
        let password = if self.password.is_empty() {
            ""
        } else {
            ":****"
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!(
            "postgresql://{}{password}@{host}:{}/{}",
            self.user, self.port, self.dbname
        )
    }

    /// The whole connection string, password included, in `key=value` form (what a
    /// connector keeps to log in again after a restart).
    pub fn to_key_values(&self) -> String {
        let quote = |v: &str| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"));
        let mut text = format!(
            "host={} port={} user={} password={} dbname={} sslmode={} channel_binding={}",
            quote(&self.host),
            self.port,
            quote(&self.user),
            quote(&self.password),
            quote(&self.dbname),
            self.sslmode.name(),
            self.channel_binding.name(),
        );
        for (key, path) in [
            ("sslrootcert", &self.tls_files.root_cert),
            ("sslcert", &self.tls_files.cert),
            ("sslkey", &self.tls_files.key),
        ] {
            if let Some(path) = path {
                text.push_str(&format!(" {key}={}", quote(&path.to_string_lossy())));
            }
        }
        if let Some(name) = &self.application_name {
            text.push_str(&format!(" application_name={}", quote(name)));
        }
        if let Some(timeout) = self.connect_timeout {
            text.push_str(&format!(" connect_timeout={}", timeout.as_secs()));
        }
        text
    }

    /// The configuration of an ordinary (SQL) session.
    pub fn session(&self) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(&self.dbname)
            .application_name(self.application_name.as_deref().unwrap_or("eddy"))
            .connect_timeout(self.connect_timeout.unwrap_or(Duration::from_secs(10)));
        if !self.password.is_empty() {
            config.password(&self.password);
        }
        let options: Vec<String> = SESSION_SETTINGS
            .iter()
            .map(|(name, value)| format!("-c {name}={value}"))
            .collect();
        config.options(options.join(" "));
        // What the TLS session checks is `Tls`'s business; this only says whether to ask.
        config.ssl_mode(match self.sslmode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Allow | SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        });
        config.channel_binding(match self.channel_binding {
            ChannelBinding::Disable => tokio_postgres::config::ChannelBinding::Disable,
            ChannelBinding::Prefer => tokio_postgres::config::ChannelBinding::Prefer,
            ChannelBinding::Require => tokio_postgres::config::ChannelBinding::Require,
        });
        config
    }
}

#[derive(Default)]
struct Builder {
    host: Option<String>,
    port: Option<String>,
    user: Option<String>,
    password: Option<String>,
    dbname: Option<String>,
    sslmode: Option<String>,
    sslrootcert: Option<String>,
    sslcert: Option<String>,
    sslkey: Option<String>,
    channel_binding: Option<String>,
    application_name: Option<String>,
    connect_timeout: Option<String>,
}

impl Builder {
    fn set(&mut self, key: &str, value: String) -> Result<()> {
        let slot = match key {
            "host" | "hostaddr" => &mut self.host,
            "port" => &mut self.port,
            "user" => &mut self.user,
            "password" => &mut self.password,
            "dbname" => &mut self.dbname,
            "sslmode" => &mut self.sslmode,
            "sslrootcert" => &mut self.sslrootcert,
            "sslcert" => &mut self.sslcert,
            "sslkey" => &mut self.sslkey,
            "channel_binding" => &mut self.channel_binding,
            "application_name" => &mut self.application_name,
            "connect_timeout" => &mut self.connect_timeout,
            other => {
                return Err(Error::ConnectionString(format!(
                    "unknown parameter `{other}` (known: host, port, user, password, dbname, \
                     sslmode, sslrootcert, sslcert, sslkey, channel_binding, application_name, \
                     connect_timeout)"
                )));
            }
        };
        *slot = Some(value);
        Ok(())
    }

    fn build(self) -> Result<PgConfig> {
        let invalid = |detail: &str| Error::ConnectionString(detail.to_string());
        let host = self
            .host
            .filter(|h| !h.is_empty())
            .ok_or_else(|| invalid("no host"))?;
        let port =
            match self.port.filter(|p| !p.is_empty()) {
                None => 5432,
                Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                    invalid(&format!("port `{p}` is not a number from 1 to 65535"))
                })?,
            };
        let user = self
            .user
            .filter(|u| !u.is_empty())
            .ok_or_else(|| invalid("no user name"))?;
        let dbname = self
            .dbname
            .filter(|d| !d.is_empty())
            .ok_or_else(|| invalid("no database name (…/DATABASE or dbname=)"))?;
        let sslmode = match self.sslmode {
            None => SslMode::Prefer,
            Some(mode) => SslMode::parse(&mode)?,
        };
        let connect_timeout = match self.connect_timeout {
            None => None,
            Some(t) => Some(Duration::from_secs(t.parse::<u64>().map_err(|_| {
                invalid(&format!("connect_timeout `{t}` is not a number of seconds"))
            })?)),
        };
        Ok(PgConfig {
            host,
            port,
            user,
            password: self.password.unwrap_or_default(),
            dbname,
            sslmode,
            tls_files: TlsFiles {
                root_cert: path(self.sslrootcert),
                cert: path(self.sslcert),
                key: path(self.sslkey),
            },
            channel_binding: match self.channel_binding {
                None => ChannelBinding::default(),
                Some(binding) => ChannelBinding::parse(&binding)?,
            },
            application_name: self.application_name,
            connect_timeout,
        })
    }
}

/// A file parameter; empty is unset, as in libpq.
fn path(value: Option<String>) -> Option<PathBuf> {
    value.filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// Decodes `%XX` escapes; `+` is a plus sign (URLs are not form bodies).
fn decode(part: &str, what: &str) -> Result<String> {
    percent_decode_str(part)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| Error::ConnectionString(format!("the {what} is not UTF-8 once decoded")))
}

/// The part after `postgresql://`. The user information ends at the last `@` before the
/// path, so an unescaped `@` in a password still reads right.
fn parse_url(rest: &str, builder: &mut Builder) -> Result<()> {
    let (before_query, query) = match rest.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (rest, None),
    };
    let (authority, path) = match before_query.rfind('@') {
        Some(at) => {
            let (userinfo, hostpath) = (&before_query[..at], &before_query[at + 1..]);
            let (user, password) = match userinfo.split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (userinfo, None),
            };
            builder.user = Some(decode(user, "user name")?);
            if let Some(password) = password {
                builder.password = Some(decode(password, "password")?);
            }
            split_path(hostpath)
        }
        None => split_path(before_query),
    };
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| Error::ConnectionString("an IPv6 host without its `]`".into()))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if authority.contains(',') {
        return Err(Error::ConnectionString(
            "several hosts are not supported: name one".into(),
        ));
    }
    builder.host = Some(decode(host, "host")?);
    builder.port = port.map(str::to_string);
    if let Some(path) = path {
        builder.dbname = Some(decode(path, "database name")?);
    }
    for pair in query.into_iter().flat_map(|q| q.split('&')) {
        if pair.is_empty() {
            continue;
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        builder.set(&decode(key, "parameter name")?, decode(value, key)?)?;
    }
    Ok(())
}

/// `host:port/dbname` into the authority and the database name.
fn split_path(hostpath: &str) -> (&str, Option<&str>) {
    match hostpath.split_once('/') {
        Some((authority, path)) => (authority, Some(path)),
        None => (hostpath, None),
    }
}

/// libpq's `key = value` form: values may be single-quoted, with `\'` and `\\` escapes.
fn parse_key_values(text: &str, builder: &mut Builder) -> Result<()> {
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(());
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(Error::ConnectionString(format!(
                "`{key}` is not followed by `=` (expected a URL or key=value pairs)"
            )));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => break,
                    },
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => {
                        return Err(Error::ConnectionString(format!(
                            "the value of `{key}` has no closing quote"
                        )));
                    }
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    if let Some(escaped) = chars.next() {
                        value.push(escaped);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        builder.set(&key, value)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoded_and_raw_special_characters_decode_exactly() {
        for (text, password) in [
            ("postgresql://app:a%2Bb@db/shop", "a+b"),
            ("postgresql://app:a+b@db/shop", "a+b"),
            ("postgresql://app:p%26ss@db/shop", "p&ss"),
            ("postgresql://app:p&ss@db/shop", "p&ss"),
            ("postgresql://app:p%40ss@db/shop", "p@ss"),
            ("postgresql://app:p@ss@db/shop", "p@ss"),
            ("postgresql://app:a%3Ab@db/shop", "a:b"),
            ("postgresql://app:a:b@db/shop", "a:b"),
            ("postgres://app:%E2%9C%93%20x@db/shop", "✓ x"),
        ] {
            let c = PgConfig::parse(text).unwrap();
            assert_eq!(c.password(), password, "{text}");
            assert_eq!((c.user.as_str(), c.host.as_str()), ("app", "db"), "{text}");
            assert_eq!((c.port, c.dbname.as_str()), (5432, "shop"), "{text}");
        }
    }

    #[test]
    fn urls_carry_port_ipv6_and_parameters() {
        let c = PgConfig::parse(
            "postgresql://u%40corp:pw@[::1]:6543/my%20db?sslmode=disable&application_name=x",
        )
        .unwrap();
        assert_eq!(c.user, "u@corp");
        assert_eq!(c.host, "::1");
        assert_eq!(c.port, 6543);
        assert_eq!(c.dbname, "my db");
        assert_eq!(c.sslmode, SslMode::Disable);
        assert_eq!(c.application_name.as_deref(), Some("x"));
        assert_eq!(c.redacted(), "postgresql://u@corp:****@[::1]:6543/my db");
    }

    #[test]
    fn key_value_form_with_quotes_and_escapes() {
        let c = PgConfig::parse(
            "host=db.internal port = 6000 user=app password='it\\'s a+b&c@d' dbname=shop sslmode=require",
        )
        .unwrap();
        assert_eq!(c.password(), "it's a+b&c@d");
        assert_eq!((c.host.as_str(), c.port), ("db.internal", 6000));
        assert_eq!(c.sslmode, SslMode::Require);
    }

    #[test]
    fn bad_strings_name_the_problem_without_the_password() {
        for (text, problem) in [
            ("mysql://u:hunter2@h/db", "unsupported scheme `mysql`"),
            ("postgresql://u:hunter2@h", "no database name"),
            ("postgresql://u:hunter2@h/", "no database name"),
            ("postgresql://:hunter2@h/db", "no user name"),
            ("postgresql://u:hunter2@/db", "no host"),
            ("postgresql://u:hunter2@h:99999/db", "port `99999`"),
            ("postgresql://u:hunter2@h/db?sslmode=on", "sslmode `on`"),
            (
                "postgresql://u:hunter2@h/db?colour=red",
                "unknown parameter `colour`",
            ),
            (
                "host=h user=u password='hunter2 dbname=d",
                "no closing quote",
            ),
            (
                "host=h user=u password hunter2",
                "`password` is not followed by `=`",
            ),
        ] {
            let error = PgConfig::parse(text).unwrap_err().to_string();
            assert!(error.contains(problem), "{text}: {error}");
            assert!(!error.contains("hunter2"), "{error}");
        }
    }

    #[test]
    fn key_value_form_round_trips() {
        for text in [
            "postgresql://u:it's%20a\\b%2B@h:6000/d?sslmode=disable&connect_timeout=3",
            "host=h user=u password='q\\'x' dbname=d application_name='my app'",
        ] {
            let c = PgConfig::parse(text).unwrap();
            assert_eq!(PgConfig::parse(&c.to_key_values()).unwrap(), c, "{text}");
        }
    }

    #[test]
    fn debug_shows_no_password() {
        let c = PgConfig::parse("host=h user=u password=hunter2 dbname=d").unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(c.sslmode, SslMode::Prefer);
    }
}
