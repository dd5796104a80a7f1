//! Acceptance over the real Debezium captures of fixtures/pg-app: for every converter variant,
//! eddy's result must be what PostgreSQL itself answers on the database the capture came from
//! (schema.sql then workload.sql, loaded into a private server).

use crate::support::compare::table_mismatches;
use crate::support::eddy::{Eddy, Folded, fold_debezium_lines, plain_numbers, text_rows};
use crate::support::postgres::{fixture_queries, pg_app};
use crate::support::{BATCH_SIZES, TempDir, VARIANTS, events, first, prefix_file, variant_path};

/// Runs `sql` over every variant at every batch size; each result must equal `expected`
/// (rows as psql prints them, in any order). Gathers every disagreement before failing.
fn assert_all_variants(sql: &str, expected: &[Vec<String>]) {
    let mut expected = expected.to_vec();
    expected.sort();
    let mut failures = Vec::new();
    for variant in VARIANTS {
        for &batch in BATCH_SIZES {
            let eddy = Eddy::new(sql, variant_path(variant)).batch_size(batch);
            match eddy.try_fold() {
                Ok(folded) => {
                    let got = text_rows(&folded);
                    if got != expected {
                        failures.push(format!(
                            "{}\n    eddy:       {got:?}\n    PostgreSQL: {expected:?}",
                            eddy.describe()
                        ));
                    }
                }
                Err(e) => failures.push(e),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} runs disagree with PostgreSQL:\n{}",
        failures.len(),
        VARIANTS.len() * BATCH_SIZES.len(),
        failures.join("\n")
    );
}

/// Runs `sql` over every variant and batch size and asserts the result equals PostgreSQL's.
fn assert_matches_postgres(sql: &str) {
    assert_all_variants(sql, pg_app().query(sql));
}

/// Result rows as psql prints them.
type Rows = Vec<Vec<String>>;

fn rows(rows: &[&[&str]]) -> Rows {
    rows.iter()
        .map(|r| r.iter().map(|v| v.to_string()).collect())
        .collect()
}

fn sorted(mut rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    rows.sort();
    rows
}

// ---------------------------------------------------------------------------------------------
// 1. Aggregates over the whole stream

#[test]
fn count_users_matches_postgres() {
    let sql = "SELECT COUNT(*) FROM users";
    // The fixture's final state, so this test cannot pass against an empty database.
    assert_eq!(pg_app().query(sql), rows(&[&["5"]]));
    assert_matches_postgres(sql);
}

#[test]
fn global_aggregate_key_is_empty_object() {
    for variant in VARIANTS {
        let folded = Eddy::new("SELECT COUNT(*) FROM users", variant_path(variant)).fold();
        let keys: Vec<&String> = folded.keys().collect();
        assert_eq!(
            keys,
            ["{}"],
            "{variant}: a global aggregate has one row, key {{}}"
        );
    }
}

#[test]
fn orders_by_status_sum_keeps_decimal_scale() {
    let sql = "SELECT status, COUNT(*), SUM(amount) FROM orders GROUP BY status";
    // numeric(12,2) sums keep the scale: 104.96 = 0.01 + 99.95 + 5.00, and 25.50 not 25.5.
    assert_eq!(
        sorted(pg_app().query(sql).to_vec()),
        sorted(rows(&[
            &["new", "3", "104.96"],
            &["paid", "1", "25.50"],
            &["NULL", "1", "NULL"],
        ]))
    );
    assert_matches_postgres(sql);
}

#[test]
fn all_types_by_mood_matches_postgres() {
    let sql = "SELECT c_mood, COUNT(*) FROM all_types GROUP BY c_mood";
    assert_eq!(
        sorted(pg_app().query(sql).to_vec()),
        sorted(rows(&[&["ok", "1"], &["sad", "1"], &["NULL", "1"]]))
    );
    assert_matches_postgres(sql);
}

/// `users` has REPLICA IDENTITY DEFAULT: a delete's `before` holds only the key, with NOT NULL
/// columns filled with type defaults and `country` NULL. Retracting that `before` instead of
/// the stored row would take bob's PK change (id 2 -> 100) out of the NULL group instead of GB.
#[test]
fn default_identity_delete_does_not_trust_before() {
    let sql = "SELECT country, COUNT(*) FROM users GROUP BY country";
    assert_eq!(
        sorted(pg_app().query(sql).to_vec()),
        sorted(rows(&[
            &["DE", "1"],
            &["GB", "1"],
            &["BE", "1"],
            &["JP", "1"],
            &["NULL", "1"],
        ]))
    );
    assert_matches_postgres(sql);
}

// ---------------------------------------------------------------------------------------------
// 2. Every event decodes, every column right: SELECT * per table with a primary key

/// `SELECT * FROM table` with `--on-error fail`, over every variant and batch size, compared
/// with PostgreSQL's final rows column by column. Returns the folded results of the runs that
/// succeeded, for extra checks.
fn assert_table_matches_postgres(table: &str, ignore: &[&str]) -> Vec<(String, Folded)> {
    assert_columns_match_postgres(State::Final, table, None, ignore)
}

/// Which state of the capture database a comparison is about.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// The whole capture against PostgreSQL after workload.sql.
    Final,
    /// The initial snapshot's events (`op: r`, all at the start of each file) against
    /// PostgreSQL after schema.sql.
    Seed,
}

/// `SELECT <columns> FROM table` (`None`: `*`) with `--on-error fail`, over every variant and
/// batch size, compared with PostgreSQL's rows column by column. Returns the folded results of
/// the runs that succeeded, for extra checks.
fn assert_columns_match_postgres(
    state: State,
    table: &str,
    columns: Option<&[&str]>,
    ignore: &[&str],
) -> Vec<(String, Folded)> {
    let mut pg = match state {
        State::Final => pg_app().table(table).clone(),
        State::Seed => pg_app().seed_table(table).clone(),
    };
    let sql = match columns {
        None => format!("SELECT * FROM {table}"),
        Some(columns) => {
            pg.columns.retain(|c| columns.contains(&c.name.as_str()));
            assert_eq!(
                pg.columns.len(),
                columns.len(),
                "unknown columns in {columns:?}"
            );
            format!("SELECT {} FROM {table}", columns.join(", "))
        }
    };
    let pg = &pg;
    let dir = TempDir::new();
    let mut failures = Vec::new();
    let mut results = Vec::new();
    for variant in VARIANTS {
        let input = match state {
            State::Final => variant_path(variant),
            State::Seed => {
                let events = events(variant);
                let snapshot = events
                    .iter()
                    .position(|e| e.op.as_deref() != Some("r"))
                    .expect("events after the snapshot");
                assert!(snapshot > 0, "{variant} starts with a snapshot");
                prefix_file(&dir, variant, &events, snapshot)
            }
        };
        for &batch in BATCH_SIZES {
            let eddy = Eddy::new(&sql, &input)
                .arg("--on-error")
                .arg("fail")
                .batch_size(batch);
            match eddy.try_fold() {
                Ok(folded) => {
                    let problems = table_mismatches(variant, table, &folded, pg, ignore);
                    if !problems.is_empty() {
                        failures.push(format!(
                            "{} (batch size {batch:?}):\n    {}",
                            eddy.describe(),
                            problems.join("\n    ")
                        ));
                    }
                    results.push((variant.to_string(), folded));
                }
                Err(e) => failures.push(e),
            }
        }
    }
    let against = match state {
        State::Final => "PostgreSQL after the workload",
        State::Seed => "PostgreSQL's snapshot (seed rows)",
    };
    assert!(
        failures.is_empty(),
        "{sql} disagrees with {against} in {} of {} runs:\n{}",
        failures.len(),
        VARIANTS.len() * BATCH_SIZES.len(),
        failures.join("\n")
    );
    results
}

/// Every all_types column but the two arrays and the interval (not in schema.prisma).
fn all_types_scalar_columns() -> Vec<&'static str> {
    let columns: Vec<&str> = pg_app()
        .table("all_types")
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .filter(|c| !["c_int_array", "c_text_array", "c_interval"].contains(c))
        .collect();
    assert_eq!(columns.len(), 23);
    columns
}

#[test]
fn users_match_postgres_every_column() {
    // `plan` was added mid-stream (ALTER TABLE users ADD COLUMN plan text DEFAULT 'free').
    // PostgreSQL fills the default into existing rows without writing them, so no change event
    // carries it: rows whose last event predates the ALTER are NULL in any CDC consumer, and
    // 'free' in PostgreSQL. That is expected, so `plan` is left out of the column comparison and
    // checked below only for the rows written after the ALTER.
    let results = assert_table_matches_postgres("users", &["plan"]);
    for (variant, folded) in results {
        // id 5 was inserted with plan 'pro' and id 1 updated to 'enterprise' after the ALTER.
        let plan = |id: u32| {
            folded
                .get(&format!("{{\"id\":{id}}}"))
                .and_then(|row| row.get("plan"))
                .map(str::to_string)
        };
        assert_eq!(
            plan(5).as_deref(),
            Some("\"pro\""),
            "{variant}: users 5 plan"
        );
        assert_eq!(
            plan(1).as_deref(),
            Some("\"enterprise\""),
            "{variant}: users 1 plan"
        );
    }
}

#[test]
fn orders_match_postgres_every_column() {
    assert_table_matches_postgres("orders", &[]);
}

#[test]
fn all_types_match_postgres_every_column() {
    assert_table_matches_postgres("all_types", &[]);
}

/// Every all_types column but the two arrays, so that a problem with list columns (see
/// `prisma_list_columns_accept_null`) does not hide the scalar types' decoding.
#[test]
fn all_types_scalar_columns_match_postgres() {
    assert_columns_match_postgres(
        State::Final,
        "all_types",
        Some(&all_types_scalar_columns()),
        &[],
    );
}

/// A Prisma list (`Int[]`, `String[]`) cannot be marked optional, yet the PostgreSQL array
/// column behind it is nullable: all_types row 2 has NULL `c_int_array` and `c_text_array`
/// (from the snapshot on). They must come out as NULL, not fail the run.
#[test]
fn prisma_list_columns_accept_null() {
    for state in [State::Seed, State::Final] {
        let pg = match state {
            State::Final => pg_app().table("all_types"),
            State::Seed => pg_app().seed_table("all_types"),
        };
        assert!(
            pg.rows.iter().any(|r| r["c_int_array"].is_null()),
            "the fixture has a NULL int[]"
        );
        let columns = ["id", "c_int_array", "c_text_array"];
        assert_columns_match_postgres(state, "all_types", Some(&columns), &[]);
    }
}

/// The initial snapshot alone (every `op: r` event) against the seed rows of schema.sql: the
/// values the workload later overwrites (the unicode/quoted text, bytea `\xdeadbeef00ff`, the
/// jsonb document, `{1,2,NULL,4}`, the +02 timestamptz, 1234567890.12, ...) are checked here.
#[test]
fn snapshot_rows_match_postgres_seed() {
    for table in ["orders", "docs", "docs_full", "marker"] {
        assert_columns_match_postgres(State::Seed, table, None, &[]);
    }
    // `plan` does not exist yet in the seed database: eddy has the column (schema.prisma
    // describes the final table) and no event has given it a value.
    for (variant, folded) in assert_columns_match_postgres(State::Seed, "users", None, &["plan"]) {
        assert_eq!(folded.len(), 3, "{variant}: three seed users");
        for row in folded.values() {
            assert_eq!(row.get("plan"), Some("null"), "{variant}: {row}");
        }
    }
    // The array columns are checked by prisma_list_columns_accept_null.
    let results = assert_columns_match_postgres(
        State::Seed,
        "all_types",
        Some(&all_types_scalar_columns()),
        &[],
    );
    assert_eq!(results.len(), VARIANTS.len() * BATCH_SIZES.len());
    for (variant, folded) in &results {
        let row = &folded["{\"id\":1}"];
        assert_eq!(
            row.get("c_bytea"),
            Some("\"3q2+7wD/\""),
            "{variant}: base64 of deadbeef00ff"
        );
    }
}

#[test]
fn docs_match_postgres_every_column() {
    assert_table_matches_postgres("docs", &[]);
}

#[test]
fn docs_full_match_postgres_every_column() {
    // docs_full is truncated at the end of the workload: both sides are empty.
    assert!(pg_app().table("docs_full").rows.is_empty());
    assert_table_matches_postgres("docs_full", &[]);
}

#[test]
fn marker_matches_postgres_every_column() {
    assert_eq!(pg_app().table("marker").rows.len(), 1);
    assert_table_matches_postgres("marker", &[]);
}

/// The body both docs tables start with (schema.sql), as PostgreSQL computes it.
fn seed_body() -> String {
    let rows = pg_app().query("SELECT string_agg(md5(i::text), '') FROM generate_series(1, 600) i");
    assert_eq!(rows[0][0].len(), 600 * 32);
    rows[0][0].clone()
}

/// Runs `sql` over the first `n` events of a variant at every batch size; asserts the result.
fn assert_prefix(
    dir: &TempDir,
    variant: &str,
    n: usize,
    sql: &str,
    expected: &[Vec<String>],
    failures: &mut Vec<String>,
) {
    let events = events(variant);
    let path = prefix_file(dir, variant, &events, n);
    let mut expected = expected.to_vec();
    expected.sort();
    for &batch in BATCH_SIZES {
        let eddy = Eddy::new(sql, &path).batch_size(batch);
        match eddy.try_fold() {
            Ok(folded) => {
                let got = text_rows(&folded);
                if got != expected {
                    failures.push(format!(
                        "{variant}, first {n} events: {}\n    eddy:     {got:?}\n    expected: {expected:?}",
                        eddy.describe()
                    ));
                }
            }
            Err(e) => failures.push(e),
        }
    }
}

/// docs has DEFAULT identity: `UPDATE docs SET title = 'v2'` leaves the TOASTed body out of the
/// event (`__debezium_unavailable_value`). Right after that event, the row must still hold the
/// body eddy stored from the snapshot.
#[test]
fn toast_placeholder_keeps_stored_body() {
    let body = seed_body();
    let dir = TempDir::new();
    let mut failures = Vec::new();
    for variant in VARIANTS {
        let events = events(variant);
        let after_title_update = first(&events, "docs", "u") + 1;
        assert!(
            events[after_title_update - 1]
                .line
                .contains("__debezium_unavailable_value"),
            "{variant}: the first docs update should carry the TOAST placeholder"
        );
        let expected = vec![vec!["1".to_string(), "v2".to_string(), body.clone()]];
        assert_prefix(
            &dir,
            variant,
            after_title_update,
            "SELECT * FROM docs",
            &expected,
            &mut failures,
        );
        assert_prefix(
            &dir,
            variant,
            after_title_update,
            "SELECT title, COUNT(*) FROM docs WHERE body = '__debezium_unavailable_value' GROUP BY title",
            &[],
            &mut failures,
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// docs_full has FULL identity: its title update carries the whole body in both images. Just
/// before `TRUNCATE audit_log, docs_full` the row is (1, 'v2', seed body); after it, nothing.
#[test]
fn docs_full_rows_survive_until_truncate() {
    let body = seed_body();
    let dir = TempDir::new();
    let mut failures = Vec::new();
    for variant in VARIANTS {
        let events = events(variant);
        let truncate = first(&events, "docs_full", "t");
        let expected = vec![vec!["1".to_string(), "v2".to_string(), body.clone()]];
        assert_prefix(
            &dir,
            variant,
            truncate,
            "SELECT * FROM docs_full",
            &expected,
            &mut failures,
        );
        assert_prefix(
            &dir,
            variant,
            truncate + 1,
            "SELECT * FROM docs_full",
            &[],
            &mut failures,
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// 3. Tables without a primary key

#[test]
fn audit_log_without_key_matches_postgres() {
    let sql = "SELECT COUNT(*), COUNT(DISTINCT actor) FROM audit_log";
    // Empty after `TRUNCATE audit_log, docs_full`; a global aggregate still has its one row.
    assert_eq!(pg_app().query(sql), rows(&[&["0", "0"]]));
    assert_matches_postgres(sql);
}

#[test]
fn page_views_without_key_matches_postgres() {
    let sql = "SELECT path, COUNT(*) FROM page_views GROUP BY path";
    // Empty after `TRUNCATE page_views`.
    assert!(pg_app().query(sql).is_empty());
    assert_matches_postgres(sql);
}

/// audit_log has no key and REPLICA IDENTITY FULL: updates and deletes carry the whole old
/// row, which is all there is to find the row to retract. Expected states, from workload.sql:
/// - seed: ('2024-01-01 00:00:00+00', 'system', 'bootstrap');
/// - the multi-table transaction inserts ('erin', 'signup+2 orders');
/// - `UPDATE … SET action = 'bootstrap-edited' WHERE actor = 'system'`;
/// - `DELETE … WHERE actor = 'system'` leaves erin's row only;
/// - `TRUNCATE audit_log, docs_full` empties it.
#[test]
fn audit_log_full_identity_update_and_delete_retract_whole_rows() {
    let by_row = "SELECT actor, action, COUNT(*) FROM audit_log GROUP BY actor, action";
    let counts = "SELECT COUNT(*), COUNT(DISTINCT actor) FROM audit_log";
    let dir = TempDir::new();
    let mut failures = Vec::new();
    for variant in VARIANTS {
        let events = events(variant);
        let update = first(&events, "audit_log", "u");
        let delete = first(&events, "audit_log", "d");
        let truncate = first(&events, "audit_log", "t");
        let erin = ["erin", "signup+2 orders", "1"];
        let cases: [(usize, Rows, Rows); 4] = [
            (
                update,
                rows(&[&["system", "bootstrap", "1"], &erin]),
                rows(&[&["2", "2"]]),
            ),
            (
                delete,
                rows(&[&["system", "bootstrap-edited", "1"], &erin]),
                rows(&[&["2", "2"]]),
            ),
            // Just before the TRUNCATE: the intermediate point the final state cannot show.
            (truncate, rows(&[&erin]), rows(&[&["1", "1"]])),
            (truncate + 1, vec![], rows(&[&["0", "0"]])),
        ];
        for (n, expected_rows, expected_counts) in cases {
            assert_prefix(&dir, variant, n, by_row, &expected_rows, &mut failures);
            assert_prefix(&dir, variant, n, counts, &expected_counts, &mut failures);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// page_views has no key and DEFAULT identity: insert-only. Before `TRUNCATE page_views` it
/// holds the seed '/home' and the workload's '/pricing' and '/signup' (one row each).
#[test]
fn page_views_before_truncate_counts_each_path() {
    let sql = "SELECT path, COUNT(*) FROM page_views GROUP BY path";
    let dir = TempDir::new();
    let mut failures = Vec::new();
    for variant in VARIANTS {
        let events = events(variant);
        let truncate = first(&events, "page_views", "t");
        let expected = rows(&[&["/home", "1"], &["/pricing", "1"], &["/signup", "1"]]);
        assert_prefix(&dir, variant, truncate, sql, &expected, &mut failures);
        assert_prefix(
            &dir,
            variant,
            truncate,
            "SELECT COUNT(*), COUNT(viewed_at) FROM page_views",
            &rows(&[&["3", "2"]]),
            &mut failures,
        );
        assert_prefix(&dir, variant, truncate + 1, sql, &[], &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The keyless tables' every column (timestamptz, timestamp, text) decodes in every variant,
/// shown just before each table's first delete or truncate (workload.sql).
#[test]
fn keyless_tables_every_column_decodes() {
    let audit = "SELECT ts, actor, action, COUNT(*) FROM audit_log GROUP BY ts, actor, action";
    let views = "SELECT path, viewed_at, COUNT(*) FROM page_views GROUP BY path, viewed_at";
    let dir = TempDir::new();
    let mut failures = Vec::new();
    for variant in VARIANTS {
        let events = events(variant);
        let expected_audit = rows(&[
            &["2024-01-01T00:00:00Z", "system", "bootstrap-edited", "1"],
            &["2024-06-02T12:00:03Z", "erin", "signup+2 orders", "1"],
        ]);
        let delete = first(&events, "audit_log", "d");
        assert_prefix(&dir, variant, delete, audit, &expected_audit, &mut failures);
        let expected_views = rows(&[
            &["/home", "2024-05-01T00:00:00", "1"],
            &["/pricing", "2024-06-03T00:00:00", "1"],
            &["/signup", "NULL", "1"],
        ]);
        let truncate = first(&events, "page_views", "t");
        assert_prefix(
            &dir,
            variant,
            truncate,
            views,
            &expected_views,
            &mut failures,
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Joins, subqueries, set operations and top-N

/// Every query of fixtures/pg-app/sql/queries.sql and topn.sql, over every variant and batch
/// size, against PostgreSQL.
#[test]
fn join_subquery_set_and_topn_queries_match_postgres() {
    let queries = fixture_queries();
    assert!(
        queries.len() >= 16,
        "queries.sql and topn.sql hold the queries"
    );
    assert!(
        queries.iter().any(|q| q.contains("DENSE_RANK")),
        "topn.sql is read"
    );
    for sql in &queries {
        assert_matches_postgres(sql);
    }
}

/// The same queries in the `debezium` format (Flink's retract pairs, Flink's spellings of
/// numbers), one event per batch so every intermediate change is published: folded, each
/// equals PostgreSQL's answer.
#[test]
fn join_subquery_set_and_topn_queries_match_postgres_in_debezium_format() {
    let mut failures = Vec::new();
    for sql in fixture_queries() {
        let expected = plain_numbers(pg_app().query(&sql).to_vec());
        let eddy = Eddy::new(&sql, variant_path(VARIANTS[0]))
            .batch_size(Some(1))
            .arg("--format")
            .arg("debezium");
        let run = eddy.run();
        run.assert_success(&eddy);
        match fold_debezium_lines(&run.stdout) {
            Ok(rows) if plain_numbers(rows.clone()) == expected => {}
            Ok(rows) => failures.push(format!(
                "{}\n    eddy:       {rows:?}\n    PostgreSQL: {expected:?}",
                eddy.describe()
            )),
            Err(e) => failures.push(format!("{}: {e}", eddy.describe())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
