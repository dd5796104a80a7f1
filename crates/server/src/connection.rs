//! Database connection strings: parsed, redacted, and turned into Debezium connector settings.
//!
//! A connection string carries a password. It is read here and handed to Kafka Connect,
//! and nowhere else: what the service stores, logs or answers is [`Connection::redacted`].

use std::fmt;

use eddy_postgres::PgConfig;
use eddy_postgres::connector::replication_name;
use serde_json::{Map, Value, json};
use url::Url;

use crate::error::{Error, Result};

/// Which Debezium connector a database needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Mysql,
}

/// A parsed `postgresql://` or `mysql://` connection string.
#[derive(Clone)]
pub struct Connection {
    pub dialect: Dialect,
    pub host: String,
    pub port: u16,
    pub user: String,
    password: String,
    pub database: String,
    postgres: Option<PgConfig>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Connection {
    /// Parses a connection string: `mysql://` (or `mariadb://`) URLs here, PostgreSQL's URL
    /// and `key=value` forms by `eddy-postgres`. Errors describe the problem without
    /// repeating the string, which may hold a password.
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        if let Some((scheme, _)) = text.split_once("://")
            && !matches!(scheme, "postgres" | "postgresql" | "mysql" | "mariadb")
        {
            return Err(Error::invalid(
                "connectionString",
                format!("unsupported scheme `{scheme}` (expected postgresql:// or mysql://)"),
            ));
        }
        let is_mysql = ["mysql://", "mariadb://"]
            .iter()
            .any(|scheme| text.starts_with(scheme));
        if !is_mysql {
            return Ok(Connection::from_postgres(PgConfig::parse(text).map_err(
                |e| match e {
                    eddy_postgres::Error::ConnectionString(detail) => {
                        Error::invalid("connectionString", detail)
                    }
                    other => Error::invalid("connectionString", other.to_string()),
                },
            )?));
        }
        let invalid = |detail: &str| Error::invalid("connectionString", detail);
        let url = Url::parse(text).map_err(|e| invalid(&format!("not a URL ({e})")))?;
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| invalid("no host"))?;
        let database = url.path().trim_start_matches('/');
        if database.is_empty() || database.contains('/') {
            return Err(invalid("no database name in the path (…/DATABASE)"));
        }
        if url.username().is_empty() {
            return Err(invalid("no user name"));
        }
        // Percent-decoding only: `+` is a plus sign in a URL, not a form's space.
        let decode = |s: &str, what: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| invalid(&format!("the {what} is not UTF-8 once decoded")))
        };
        Ok(Connection {
            dialect: Dialect::Mysql,
            host: host.to_string(),
            port: url.port().unwrap_or(3306),
            user: decode(url.username(), "user name")?,
            password: url
                .password()
                .map(|p| decode(p, "password"))
                .transpose()?
                .unwrap_or_default(),
            database: decode(database, "database name")?,
            postgres: None,
        })
    }

    fn from_postgres(config: PgConfig) -> Self {
        Connection {
            dialect: Dialect::Postgres,
            host: config.host.clone(),
            port: config.port,
            user: config.user.clone(),
            password: config.password().to_string(),
            database: config.dbname.clone(),
            postgres: Some(config),
        }
    }

    /// The PostgreSQL connection this string names, for Eddy's own connector.
    pub fn postgres(&self) -> Option<&PgConfig> {
        self.postgres.as_ref()
    }

    /// The connection string with the password replaced by `****`.
    pub fn redacted(&self) -> String {
        let scheme = match self.dialect {
            Dialect::Postgres => "postgresql",
            Dialect::Mysql => "mysql",
        };
        let password = if self.password.is_empty() {
            ""
        } else {
            ":****"
        };
        format!(
            "{scheme}://{}{password}@{}:{}/{}",
            self.user, self.host, self.port, self.database
        )
    }

    /// The schema part of Debezium topic names: `public` for PostgreSQL, the database
    /// for MySQL.
    pub fn topic_schema(&self) -> &str {
        match self.dialect {
            Dialect::Postgres => "public",
            Dialect::Mysql => &self.database,
        }
    }

    /// The Kafka Connect configuration of this database's Debezium connector (Debezium
    /// 2.x/3.x keys). `server_id` is MySQL's replica id, unique per connector.
    pub fn connector_config(
        &self,
        environment: &str,
        brokers: &str,
        server_id: u32,
    ) -> Map<String, Value> {
        let mut config = json!({
            "database.hostname": self.host,
            "database.port": self.port.to_string(),
            "database.user": self.user,
            "database.password": self.password,
            "topic.prefix": environment,
            "tombstones.on.delete": "true",
            "decimal.handling.mode": "precise",
            // Every operation reaches the job: a skipped TRUNCATE would leave its rows in
            // every result (PostgreSQL's connector skips it by default).
            "skipped.operations": "none",
            "snapshot.mode": "initial",
            "key.converter": "org.apache.kafka.connect.json.JsonConverter",
            "key.converter.schemas.enable": "false",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter.schemas.enable": "false",
        });
        let settings = config.as_object_mut().expect("a JSON object literal");
        let extra = match self.dialect {
            Dialect::Postgres => {
                let name = replication_name(environment);
                let mut postgres = json!({
                    "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
                    "database.dbname": self.database,
                    "plugin.name": "pgoutput",
                    "slot.name": name,
                    "publication.name": name,
                    "publication.autocreate.mode": "all_tables",
                });
                if let Some(config) = &self.postgres {
                    // The files are read where Kafka Connect runs, as the same paths.
                    let tls = postgres.as_object_mut().expect("a JSON object literal");
                    tls.insert("database.sslmode".into(), config.sslmode.name().into());
                    for (key, path) in [
                        ("database.sslrootcert", &config.tls_files.root_cert),
                        ("database.sslcert", &config.tls_files.cert),
                        ("database.sslkey", &config.tls_files.key),
                    ] {
                        if let Some(path) = path {
                            tls.insert(key.into(), path.to_string_lossy().into());
                        }
                    }
                }
                postgres
            }
            // The options that keep MySQL's values exact: BIGINT UNSIGNED as a decimal (not a
            // wrapping int64) and TIME as microseconds (not a Connect time of day, which is
            // NULL outside 00:00..24:00); binary as base64, which a schema need not tell.
            Dialect::Mysql => json!({
                "connector.class": "io.debezium.connector.mysql.MySqlConnector",
                "bigint.unsigned.handling.mode": "precise",
                "time.precision.mode": "adaptive_time_microseconds",
                "binary.handling.mode": "base64",
                "database.server.id": server_id.to_string(),
                "database.include.list": self.database,
                "include.schema.changes": "false",
                "schema.history.internal.kafka.bootstrap.servers": brokers,
                "schema.history.internal.kafka.topic": format!("{environment}.eddy.schema-history"),
            }),
        };
        settings.extend(extra.as_object().expect("a JSON object literal").clone());
        config.as_object().expect("a JSON object literal").clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_parsed_but_never_shown() {
        let c = Connection::parse("postgresql://app:s%40cret@db.internal:6543/shop").unwrap();
        assert_eq!(c.password, "s@cret");
        assert_eq!(c.redacted(), "postgresql://app:****@db.internal:6543/shop");
        assert!(!format!("{c:?}").contains("cret"));
        let config = c.connector_config("Env-1", "k:9092", 1);
        assert_eq!(config["database.password"], "s@cret");
        assert_eq!(config["slot.name"], "eddy_env_1");
        assert_eq!(config["topic.prefix"], "Env-1");
        assert_eq!(config["database.sslmode"], "prefer");
        assert!(config.get("database.sslrootcert").is_none());
    }

    #[test]
    fn tls_settings_reach_debezium() {
        let c = Connection::parse(
            "postgresql://app:pw@db/shop?sslmode=verify-full&sslrootcert=/etc/ca.pem&sslcert=/c.crt&sslkey=/c.key",
        )
        .unwrap();
        let config = c.connector_config("e", "k:9092", 1);
        assert_eq!(config["database.sslmode"], "verify-full");
        assert_eq!(config["database.sslrootcert"], "/etc/ca.pem");
        assert_eq!(config["database.sslcert"], "/c.crt");
        assert_eq!(config["database.sslkey"], "/c.key");
    }

    /// `+`, `&`, `@` and `:` in passwords, escaped or not, reach the connector exactly.
    #[test]
    fn special_characters_in_passwords_are_kept() {
        for (text, password) in [
            ("postgresql://app:p&ss@db/shop", "p&ss"),
            ("postgresql://app:a+b@db/shop", "a+b"),
            ("postgresql://app:a%2Bb%26c%40d%3Ae@db/shop", "a+b&c@d:e"),
            ("host=db user=app password='a+b&c' dbname=shop", "a+b&c"),
            ("mysql://app:a%2Bb%26c@db/shop", "a+b&c"),
            ("mysql://app:a+b@db/shop", "a+b"),
        ] {
            let c = Connection::parse(text).unwrap();
            assert_eq!(c.password, password, "{text}");
            assert_eq!(
                c.connector_config("e", "k:9092", 1)["database.password"],
                password
            );
        }
    }

    #[test]
    fn mysql_topics_use_the_database_and_a_server_id() {
        let c = Connection::parse("mysql://root:pw@localhost/inventory").unwrap();
        assert_eq!((c.port, c.topic_schema()), (3306, "inventory"));
        let config = c.connector_config("env", "k:9092", 184_054);
        assert_eq!(
            config["connector.class"],
            "io.debezium.connector.mysql.MySqlConnector"
        );
        assert_eq!(config["database.server.id"], "184054");
    }

    /// fixtures/mysql-app was captured with decimal.handling.mode=precise,
    /// skipped.operations=none and tombstones.on.delete=true, the rest at Debezium's
    /// defaults (bigint.unsigned.handling.mode=long for the shared `schemas`/`noschemas`
    /// files, precise for the `precise_*` ones). Eddy's own connector must set every one of
    /// them to the value that decodes exactly.
    #[test]
    fn mysql_connector_keeps_values_exact() {
        let c = Connection::parse("mysql://dbz:pw@db/shop").unwrap();
        let config = c.connector_config("shop", "k:9092", 7);
        for (option, value) in [
            ("decimal.handling.mode", "precise"),
            ("bigint.unsigned.handling.mode", "precise"),
            ("time.precision.mode", "adaptive_time_microseconds"),
            ("binary.handling.mode", "base64"),
            ("skipped.operations", "none"),
            ("tombstones.on.delete", "true"),
        ] {
            assert_eq!(config[option], value, "{option}");
        }
    }

    #[test]
    fn bad_connection_strings_name_the_problem_without_the_password() {
        for (text, problem) in [
            ("mongodb://u:hunter2@h/db", "unsupported scheme `mongodb`"),
            ("postgresql://u:hunter2@h", "no database name"),
            ("postgresql://u:hunter2@h/", "no database name"),
            ("not a url hunter2", "is not followed by `=`"),
            ("mysql://u:hunter2@h", "no database name"),
            ("postgresql://:hunter2@h/db", "no user name"),
        ] {
            let error = Connection::parse(text).unwrap_err().to_string();
            assert!(error.contains(problem), "{text}: {error}");
            assert!(!error.contains("hunter2"), "{error}");
        }
    }
}
