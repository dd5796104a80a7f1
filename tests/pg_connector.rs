//! Eddy's own PostgreSQL connector against a real PostgreSQL: preflight checks, each failing
//! for its own reason.

use eddy_postgres::PgConfig;
use eddy_postgres::preflight::{self, Outcome, Report, TableName, Target};

use crate::support::postgres::PgServer;

const TABLES: &str = "CREATE TABLE keyed (id int PRIMARY KEY, v text); \
    CREATE TABLE full_rows (v text); ALTER TABLE full_rows REPLICA IDENTITY FULL; \
    CREATE TABLE loose (v text);";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn config(pg: &PgServer, user: &str, db: &str) -> PgConfig {
    PgConfig::parse(&format!(
        "postgresql://{user}@127.0.0.1:{}/{db}?sslmode=disable",
        pg.port()
    ))
    .unwrap()
}

fn preflight(config: &PgConfig, tables: Option<&[TableName]>) -> Report {
    let target = Target {
        slot: "eddy_test",
        publication: "eddy_test",
        tables,
    };
    runtime().block_on(preflight::run(config, &target))
}

fn outcome<'a>(report: &'a Report, name: &str) -> (&'a Outcome, &'a str) {
    let check = report
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name} in {report:?}"));
    (&check.outcome, &check.reason)
}

#[test]
fn preflight_passes_on_a_logical_server_and_warns_about_tables_without_identity() {
    let pg = PgServer::start_logical();
    pg.rows("postgres", "CREATE DATABASE app");
    pg.rows("app", TABLES);
    let report = preflight(&config(&pg, "postgres", "app"), None);
    assert_eq!(report.failure(), None, "{report:#?}");
    let warnings: Vec<&str> = report.warnings().map(|c| c.name.as_str()).collect();
    assert_eq!(warnings, ["table public.loose"], "{report:#?}");
    for name in [
        "sslmode",
        "reachable",
        "authenticated",
        "wal_level",
        "replication_role",
        "replication_slot",
        "publication",
    ] {
        assert_eq!(outcome(&report, name).0, &Outcome::Pass, "{name}");
    }

    let missing = [TableName {
        schema: "public".into(),
        name: "nowhere".into(),
    }];
    let report = preflight(&config(&pg, "postgres", "app"), Some(&missing));
    let failure = report.failure().unwrap();
    assert_eq!(failure.name, "table public.nowhere");
    assert!(failure.reason.contains("does not exist"), "{failure:?}");

    pg.rows("app", "CREATE ROLE plain LOGIN");
    let report = preflight(&config(&pg, "plain", "app"), None);
    let failure = report.failure().unwrap();
    assert_eq!(failure.name, "replication_role", "{report:#?}");
    assert!(failure.reason.contains("`plain`"), "{failure:?}");
    let (publication, why) = outcome(&report, "publication");
    assert_eq!(publication, &Outcome::Fail);
    assert!(why.contains("superuser"), "{why}");

    let report = preflight(&config(&pg, "postgres", "no_such_db"), None);
    let failure = report.failure().unwrap();
    assert_eq!(failure.name, "authenticated");
    assert!(failure.reason.contains("no_such_db"), "{failure:?}");
    assert_eq!(outcome(&report, "wal_level").0, &Outcome::Skipped);

    pg.rows(
        "app",
        "SELECT pg_create_logical_replication_slot('eddy_test', 'test_decoding')",
    );
    let report = preflight(&config(&pg, "postgres", "app"), None);
    let failure = report.failure().unwrap();
    assert_eq!(failure.name, "replication_slot");
    assert!(failure.reason.contains("test_decoding"), "{failure:?}");
}

#[test]
fn preflight_fails_wal_level_on_a_server_without_logical_decoding() {
    let pg = PgServer::start();
    let report = preflight(&config(&pg, "postgres", "postgres"), None);
    let failure = report.failure().unwrap();
    assert_eq!(failure.name, "wal_level", "{report:#?}");
    assert!(failure.reason.contains("wal_level = replica"), "{failure:?}");
}
