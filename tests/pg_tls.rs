//! Eddy's PostgreSQL connections over TLS, against a real PostgreSQL that takes TCP
//! connections over TLS only and logs roles in with SCRAM: each `sslmode` checks what
//! libpq's does, SCRAM binds itself to the TLS session, and the connector snapshots and
//! streams through an encrypted walsender connection.

use eddy_postgres::PgConfig;
use eddy_postgres::preflight::{Outcome, Report};
use eddy_postgres::values::Modes;

use crate::pg_connector::{outcome, preflight};
use crate::support::TempDir;
use crate::support::connector::InProcess;
use crate::support::postgres::{Certificates, PgServer};

/// A password with the characters connection strings mangle.
const PASSWORD: &str = "p&ss+w@rd:1";

/// A TLS-only server with a role `capture` that may replicate, and a table to capture.
fn tls_server(certificates: &Certificates) -> PgServer {
    let pg = PgServer::start_tls(certificates);
    pg.rows("postgres", "CREATE DATABASE app");
    pg.rows(
        "app",
        &format!(
            "CREATE ROLE capture LOGIN REPLICATION SUPERUSER PASSWORD '{PASSWORD}'; \
             CREATE ROLE cert_user LOGIN REPLICATION; \
             CREATE TABLE items (id int PRIMARY KEY, name text); \
             INSERT INTO items VALUES (1, 'first')"
        ),
    );
    pg
}

/// The connection string of `capture` on `host`, with `parameters` after the `?`.
fn capture(pg: &PgServer, host: &str, parameters: &str) -> PgConfig {
    PgConfig::parse(&format!(
        "postgresql://capture:p%26ss%2Bw%40rd%3A1@{host}:{}/app?{parameters}",
        pg.port()
    ))
    .unwrap()
}

fn failure_of(report: &Report) -> (&str, &str) {
    let failure = report
        .failure()
        .unwrap_or_else(|| panic!("no check failed: {report:#?}"));
    (&failure.name, &failure.reason)
}

#[test]
fn each_sslmode_checks_the_server_as_libpq_does() {
    let dir = TempDir::new();
    let certificates = Certificates::new(dir.path());
    let pg = tls_server(&certificates);
    let root = certificates.root.display().to_string();
    let other_root = certificates.other_root.display().to_string();

    // Encrypted and logged in with SCRAM bound to the session: `channel_binding=require`
    // refuses any login that is not SCRAM-SHA-256-PLUS.
    for parameters in [
        "sslmode=require&channel_binding=require".to_string(),
        "sslmode=prefer&channel_binding=require".to_string(),
        format!("sslmode=verify-full&sslrootcert={root}&channel_binding=require"),
    ] {
        let report = preflight(&capture(&pg, "localhost", &parameters), None);
        assert_eq!(report.failure(), None, "{parameters}: {report:#?}");
        let (_, logged_in) = outcome(&report, "authenticated");
        assert!(
            logged_in.contains("over TLSv1.3"),
            "{parameters}: {logged_in}"
        );
    }
    let report = preflight(
        &capture(
            &pg,
            "localhost",
            &format!("sslmode=verify-full&sslrootcert={root}"),
        ),
        None,
    );
    let (_, checked) = outcome(&report, "sslmode");
    assert!(checked.contains("chain and host name checked"), "{checked}");

    // The certificate names `localhost`, not `127.0.0.1`: verify-ca accepts it there,
    // verify-full does not.
    let by_address = |mode: &str, root: &str| {
        preflight(
            &capture(
                &pg,
                "127.0.0.1",
                &format!("sslmode={mode}&sslrootcert={root}"),
            ),
            None,
        )
    };
    assert_eq!(by_address("verify-ca", &root).failure(), None);
    let report = by_address("verify-full", &root);
    let (check, reason) = failure_of(&report);
    assert_eq!(check, "authenticated");
    assert!(
        reason.contains("not valid for name \"127.0.0.1\""),
        "{reason}"
    );

    // A root that did not sign the server's certificate fails both verifying modes.
    for mode in ["verify-ca", "verify-full"] {
        let report = preflight(
            &capture(
                &pg,
                "localhost",
                &format!("sslmode={mode}&sslrootcert={other_root}"),
            ),
            None,
        );
        let (check, reason) = failure_of(&report);
        assert_eq!(check, "authenticated", "{mode}");
        assert!(reason.contains("UnknownIssuer"), "{mode}: {reason}");
    }

    // A role that logs in with a client certificate: with it, and without it.
    let by_certificate = |files: &str| {
        PgConfig::parse(&format!(
            "postgresql://cert_user@localhost:{}/app?sslmode=verify-full&sslrootcert={root}{files}",
            pg.port()
        ))
        .unwrap()
    };
    let with_certificate = by_certificate(&format!(
        "&sslcert={}&sslkey={}",
        certificates.client_cert.display(),
        certificates.client_key.display()
    ));
    let report = preflight(&with_certificate, None);
    assert_eq!(
        outcome(&report, "authenticated").0,
        &Outcome::Pass,
        "{report:#?}"
    );
    let report = preflight(&by_certificate(""), None);
    let (check, reason) = failure_of(&report);
    assert_eq!(check, "authenticated");
    assert!(
        reason.contains("requires a valid client certificate"),
        "{reason}"
    );

    // Without TLS the server refuses us, and says why.
    let report = preflight(&capture(&pg, "localhost", "sslmode=disable"), None);
    let (check, reason) = failure_of(&report);
    assert_eq!(check, "authenticated");
    assert!(reason.contains("no encryption"), "{reason}");

    // A root certificate file that is not there is named before anything connects.
    let report = preflight(
        &capture(
            &pg,
            "localhost",
            "sslmode=verify-ca&sslrootcert=/nonexistent/root.pem",
        ),
        None,
    );
    let (check, reason) = failure_of(&report);
    assert_eq!(check, "sslmode");
    assert!(reason.contains("/nonexistent/root.pem"), "{reason}");
    assert_eq!(outcome(&report, "reachable").0, &Outcome::Skipped);
    assert!(!format!("{report:?}").contains(PASSWORD));
}

#[test]
fn the_connector_snapshots_and_streams_over_tls_with_channel_binding() {
    let dir = TempDir::new();
    let certificates = Certificates::new(dir.path());
    let pg = tls_server(&certificates);
    let config = capture(
        &pg,
        "localhost",
        &format!(
            "sslmode=verify-full&sslrootcert={}&channel_binding=require",
            certificates.root.display()
        ),
    );
    let connector = InProcess::start_with(config, "tls", Modes::default());
    connector.wait_until_streaming();
    pg.rows("app", "INSERT INTO items VALUES (2, 'second')");
    connector.wait_for_insert("tls.public.items");
    let walsenders = pg.rows(
        "app",
        "SELECT s.ssl, s.version FROM pg_stat_replication r \
         JOIN pg_stat_ssl s ON s.pid = r.pid",
    );
    assert_eq!(walsenders, [["t", "TLSv1.3"]]);
    let events = connector.stop();
    let names: Vec<(String, String)> = events
        .iter()
        .filter_map(|e| e.value_json())
        .map(|v| (v["op"].to_string(), v["after"]["name"].to_string()))
        .collect();
    assert_eq!(
        names,
        [
            ("\"r\"".to_string(), "\"first\"".to_string()),
            ("\"c\"".to_string(), "\"second\"".to_string()),
        ]
    );
}
