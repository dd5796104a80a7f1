//! Preflight: everything a connector needs from the database, checked before anything is
//! created, each check with its own outcome and reason.
//!
//! The checks run in order and a failure of one that later ones depend on (reaching the
//! server, logging in) marks those `skipped`, so the report always names the first cause.

use std::time::Duration;

use serde::Serialize;
use tokio::net::TcpStream;
use tokio_postgres::Client;

use crate::config::PgConfig;
use crate::error::describe;
use crate::tls::{SessionTls, Tls};

/// A check's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    /// The connector can run, with a limit the reason names.
    Warn,
    Fail,
    /// Not run: an earlier check it needs failed.
    Skipped,
}

/// One check and what it found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// `sslmode`, `reachable`, `authenticated`, `wal_level`, `replication_role`,
    /// `replication_slot`, `publication`, or `table <schema>.<name>`.
    pub name: String,
    pub outcome: Outcome,
    pub reason: String,
}

/// Every check, in the order they ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    /// The first failed check, if any.
    pub fn failure(&self) -> Option<&Check> {
        self.checks.iter().find(|c| c.outcome == Outcome::Fail)
    }

    /// The checks that passed with a warning.
    pub fn warnings(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.outcome == Outcome::Warn)
    }

    fn push(&mut self, name: impl Into<String>, outcome: Outcome, reason: impl Into<String>) {
        self.checks.push(Check {
            name: name.into(),
            outcome,
            reason: reason.into(),
        });
    }

    fn skip_rest(&mut self, names: &[&str], because: &str) {
        for name in names {
            self.push(*name, Outcome::Skipped, format!("needs `{because}`"));
        }
    }
}

/// A table by schema and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct TableName {
    pub schema: String,
    pub name: String,
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// What the checks are about: the connector's slot and publication, and the tables it
/// captures (`None`: every table of the database, as a `FOR ALL TABLES` publication).
pub struct Target<'a> {
    pub slot: &'a str,
    pub publication: &'a str,
    pub tables: Option<&'a [TableName]>,
}

/// How long reaching the server may take before `reachable` fails.
const REACH_TIMEOUT: Duration = Duration::from_secs(5);

const AFTER_LOGIN: &[&str] = &[
    "wal_level",
    "replication_role",
    "replication_slot",
    "publication",
];

/// Runs every check.
pub async fn run(config: &PgConfig, target: &Target<'_>) -> Report {
    let mut report = Report { checks: Vec::new() };
    match Tls::of(config) {
        Err(e) => {
            report.push("sslmode", Outcome::Fail, e.to_string());
            report.skip_rest(&["reachable", "authenticated"], "sslmode");
            report.skip_rest(AFTER_LOGIN, "sslmode");
            return report;
        }
        Ok(tls) => {
            let what = match (&tls, config.sslmode.allows_plaintext()) {
                (None, _) => "without TLS".to_string(),
                (Some(tls), true) => format!("TLS if the server offers it ({})", tls.verification),
                (Some(tls), false) => format!("TLS only ({})", tls.verification),
            };
            report.push(
                "sslmode",
                Outcome::Pass,
                format!("sslmode={}: {what}", config.sslmode.name()),
            );
        }
    }
    let address = (config.host.as_str(), config.port);
    match tokio::time::timeout(REACH_TIMEOUT, TcpStream::connect(address)).await {
        Ok(Ok(_)) => report.push(
            "reachable",
            Outcome::Pass,
            format!("{}:{} accepts connections", config.host, config.port),
        ),
        outcome => {
            let why = match outcome {
                Ok(Err(e)) => e.to_string(),
                _ => format!("no answer within {} s", REACH_TIMEOUT.as_secs()),
            };
            report.push(
                "reachable",
                Outcome::Fail,
                format!("cannot connect to {}:{}: {why}", config.host, config.port),
            );
            report.skip_rest(&["authenticated"], "reachable");
            report.skip_rest(AFTER_LOGIN, "reachable");
            return report;
        }
    }
    let client = match connect(config).await {
        Ok(client) => {
            let over = session_encryption(&client).await;
            report.push(
                "authenticated",
                Outcome::Pass,
                format!(
                    "logged in as `{}` to database `{}` {over}",
                    config.user, config.dbname
                ),
            );
            client
        }
        Err(e) => {
            report.push("authenticated", Outcome::Fail, e);
            report.skip_rest(AFTER_LOGIN, "authenticated");
            return report;
        }
    };
    if let Err(e) = checks_after_login(&client, config, target, &mut report).await {
        report.push(
            "catalog",
            Outcome::Fail,
            format!("reading the catalog: {e}"),
        );
    }
    report
}

/// How the session is carried, from the server's own view (`pg_stat_ssl`).
async fn session_encryption(client: &Client) -> String {
    let query = "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    match client.query_opt(query, &[]).await {
        Ok(Some(row)) if row.get::<_, bool>(0) => {
            format!(
                "over {}",
                row.get::<_, Option<String>>(1).unwrap_or_default()
            )
        }
        Ok(Some(_)) => "without TLS".to_string(),
        _ => "(whether over TLS is unknown)".to_string(),
    }
}

/// A SQL session on the connection string's database, over TLS as `sslmode` says.
pub(crate) async fn connect(config: &PgConfig) -> Result<Client, String> {
    let tls = Tls::of(config).map_err(|e| e.to_string())?;
    let (client, connection) = config
        .session()
        .connect(SessionTls(tls))
        .await
        .map_err(|e| describe(&e))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "postgres session ended");
        }
    });
    Ok(client)
}

async fn checks_after_login(
    client: &Client,
    config: &PgConfig,
    target: &Target<'_>,
    report: &mut Report,
) -> Result<(), tokio_postgres::Error> {
    let wal_level: String = client.query_one("SHOW wal_level", &[]).await?.get(0);
    if wal_level == "logical" {
        report.push("wal_level", Outcome::Pass, "wal_level = logical");
    } else {
        report.push(
            "wal_level",
            Outcome::Fail,
            format!(
                "wal_level = {wal_level}; logical decoding needs wal_level = logical \
                 (ALTER SYSTEM SET wal_level = logical, then restart PostgreSQL)"
            ),
        );
    }
    let role = client
        .query_one(
            "SELECT rolreplication, rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await?;
    let (replication, superuser): (bool, bool) = (role.get(0), role.get(1));
    if replication || superuser {
        report.push(
            "replication_role",
            Outcome::Pass,
            format!("role `{}` may replicate", config.user),
        );
    } else {
        report.push(
            "replication_role",
            Outcome::Fail,
            format!(
                "role `{}` has neither REPLICATION nor SUPERUSER (ALTER ROLE {} REPLICATION)",
                config.user, config.user
            ),
        );
    }
    check_slot(client, config, target.slot, report).await?;
    check_publication(client, target, superuser, report).await?;
    check_tables(client, target.tables, report).await
}

async fn check_slot(
    client: &Client,
    config: &PgConfig,
    slot: &str,
    report: &mut Report,
) -> Result<(), tokio_postgres::Error> {
    let existing = client
        .query_opt(
            "SELECT plugin, database, active, active_pid, wal_status::text \
             FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await?;
    let name = "replication_slot";
    let Some(row) = existing else {
        let free = client
            .query_one(
                "SELECT current_setting('max_replication_slots')::int \
                 - (SELECT count(*) FROM pg_replication_slots)::int",
                &[],
            )
            .await?;
        let free: i32 = free.get(0);
        if free > 0 {
            report.push(
                name,
                Outcome::Pass,
                format!("slot `{slot}` will be created ({free} of max_replication_slots free)"),
            );
        } else {
            report.push(
                name,
                Outcome::Fail,
                format!(
                    "no replication slot is free for `{slot}`: every one of \
                     max_replication_slots is taken (drop an unused slot or raise the setting)"
                ),
            );
        }
        return Ok(());
    };
    let plugin: Option<String> = row.get(0);
    let database: Option<String> = row.get(1);
    let active: bool = row.get(2);
    let pid: Option<i32> = row.get(3);
    let wal_status: Option<String> = row.get(4);
    let (outcome, reason) = if plugin.as_deref() != Some("pgoutput") {
        (
            Outcome::Fail,
            format!(
                "slot `{slot}` exists with plugin {}, not pgoutput",
                plugin.unwrap_or_default()
            ),
        )
    } else if database.as_deref() != Some(config.dbname.as_str()) {
        (
            Outcome::Fail,
            format!(
                "slot `{slot}` exists for database `{}`, not `{}`",
                database.unwrap_or_default(),
                config.dbname
            ),
        )
    } else if active {
        (
            Outcome::Fail,
            format!(
                "slot `{slot}` is in use by another connection (pid {})",
                pid.unwrap_or_default()
            ),
        )
    } else if wal_status.as_deref() == Some("lost") {
        (
            Outcome::Fail,
            format!(
                "slot `{slot}` lost the WAL it needs (wal_status = lost): delete the connector \
                 to drop it and take a new snapshot"
            ),
        )
    } else {
        (
            Outcome::Pass,
            format!("slot `{slot}` exists and is free: streaming resumes from it"),
        )
    };
    report.push(name, outcome, reason);
    Ok(())
}

async fn check_publication(
    client: &Client,
    target: &Target<'_>,
    superuser: bool,
    report: &mut Report,
) -> Result<(), tokio_postgres::Error> {
    let name = "publication";
    let publication = target.publication;
    let exists = client
        .query_opt(
            "SELECT puballtables FROM pg_publication WHERE pubname = $1",
            &[&publication],
        )
        .await?;
    match exists {
        Some(_) => report.push(
            name,
            Outcome::Pass,
            format!("publication `{publication}` exists"),
        ),
        None if superuser => report.push(
            name,
            Outcome::Pass,
            format!("publication `{publication}` will be created FOR ALL TABLES"),
        ),
        None => report.push(
            name,
            Outcome::Fail,
            format!(
                "publication `{publication}` does not exist and only a superuser may create it \
                 FOR ALL TABLES: run CREATE PUBLICATION {publication} FOR ALL TABLES as one"
            ),
        ),
    }
    Ok(())
}

/// Tables that can neither be found nor have their updates retracted are named one by one.
async fn check_tables(
    client: &Client,
    tables: Option<&[TableName]>,
    report: &mut Report,
) -> Result<(), tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT n.nspname, c.relname, c.relreplident::text, \
                    EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
               AND n.nspname NOT LIKE 'pg_toast%' \
             ORDER BY 1, 2",
            &[],
        )
        .await?;
    let found: Vec<(TableName, String, bool)> = rows
        .iter()
        .map(|r| {
            let table = TableName {
                schema: r.get(0),
                name: r.get(1),
            };
            (table, r.get(2), r.get(3))
        })
        .collect();
    if let Some(wanted) = tables {
        for table in wanted {
            if !found.iter().any(|(t, _, _)| t == table) {
                report.push(
                    format!("table {table}"),
                    Outcome::Fail,
                    format!("table {table} does not exist"),
                );
            }
        }
    }
    for (table, identity, has_key) in &found {
        if tables.is_some_and(|wanted| !wanted.contains(table)) {
            continue;
        }
        if *has_key || identity == "f" {
            continue;
        }
        report.push(
            format!("table {table}"),
            Outcome::Warn,
            format!(
                "table {table} has no primary key and not REPLICA IDENTITY FULL: its updates \
                 and deletes cannot be retracted without a job's normalizer (ALTER TABLE {table} \
                 REPLICA IDENTITY FULL)"
            ),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANY_TABLE: Target<'static> = Target {
        slot: "eddy_x",
        publication: "eddy_x",
        tables: None,
    };

    #[tokio::test]
    async fn an_unreachable_server_fails_reachable_and_skips_the_rest() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let config = PgConfig::parse(&format!("postgresql://u:pw@127.0.0.1:{port}/db")).unwrap();
        let report = run(&config, &ANY_TABLE).await;
        let failure = report.failure().unwrap();
        assert_eq!(failure.name, "reachable");
        assert!(failure.reason.contains("cannot connect"), "{failure:?}");
        let skipped: Vec<&str> = report
            .checks
            .iter()
            .filter(|c| c.outcome == Outcome::Skipped)
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            skipped,
            [
                "authenticated",
                "wal_level",
                "replication_role",
                "replication_slot",
                "publication"
            ]
        );
    }

    #[tokio::test]
    async fn verify_full_without_root_certificates_fails_before_connecting() {
        let config = PgConfig::parse("host=h user=u dbname=d sslmode=verify-full").unwrap();
        let report = run(&config, &ANY_TABLE).await;
        let failure = report.failure().unwrap();
        assert_eq!(failure.name, "sslmode");
        assert!(failure.reason.contains("verify-full"), "{failure:?}");
    }
}
