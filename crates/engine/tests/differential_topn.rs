//! Differential test of top-N and time windows: random changelogs (differential.rs's
//! generator), folded Eddy output vs DataFusion in batch. Orders are total (ties broken by
//! `id`) or select only what the order determines. `EDDY_DIFF_SEED=<seed>` replays a case.

use datafusion::common::ScalarValue;
use eddy_engine::schema::Catalog;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::json;

use crate::common::{Model, Sent, run_cases, run_incremental, sorted};
use crate::differential::check_queries;

const QUERIES: &[&str] = &[
    "SELECT id, qty, note FROM items ORDER BY qty DESC, id LIMIT 3",
    "SELECT id, price FROM items ORDER BY price, id LIMIT 2 OFFSET 1",
    "SELECT qty FROM items ORDER BY qty NULLS FIRST LIMIT 4",
    "SELECT id, score FROM items WHERE grp IS NOT NULL ORDER BY score DESC NULLS LAST, id OFFSET 3",
    "SELECT grp, COUNT(*) AS n, SUM(qty) FROM items GROUP BY grp ORDER BY n DESC, grp LIMIT 2",
    "SELECT id, grp, rn FROM (SELECT id, grp, ROW_NUMBER() OVER (PARTITION BY grp ORDER BY qty DESC, id) AS rn FROM items) WHERE rn <= 2",
    "SELECT id, grp, r FROM (SELECT id, grp, RANK() OVER (PARTITION BY grp ORDER BY qty) AS r FROM items) WHERE r < 3",
    "SELECT id, note FROM (SELECT id, note, DENSE_RANK() OVER (PARTITION BY note ORDER BY score DESC) AS d FROM items) WHERE d = 1",
    "SELECT grp, note, n FROM (SELECT grp, note, COUNT(*) AS n, RANK() OVER (PARTITION BY grp ORDER BY COUNT(*) DESC) AS r FROM items GROUP BY grp, note) WHERE r <= 1",
    "SELECT COUNT(*), SUM(n) FROM (SELECT n FROM events ORDER BY n DESC LIMIT 3)",
    "SELECT kind, COUNT(*), MIN(n) FROM (SELECT kind, n, RANK() OVER (PARTITION BY kind ORDER BY n) AS r FROM events) WHERE r = 1 GROUP BY kind",
];

/// Windows over a table of timestamps in a few hours (differential.rs's `seen` holds
/// infinities, which the decoder refuses for queries computing with them).
const SCHEMA: &str = r#"
datasource db { provider = "postgresql" url = env("DATABASE_URL") }
model Hit {
  id   Int       @id
  kind String?
  ts   DateTime? @db.Timestamp(6)
  n    Int?
  @@map("hits")
}
"#;

const WINDOW_QUERIES: &[&str] = &[
    "SELECT HOP_START(ts, INTERVAL '10' MINUTE, INTERVAL '30' MINUTE), HOP_END(ts, INTERVAL '10' MINUTE, INTERVAL '30' MINUTE), COUNT(*), SUM(n) FROM hits GROUP BY HOP(ts, INTERVAL '10' MINUTE, INTERVAL '30' MINUTE)",
    "SELECT kind, HOP_START(ts, INTERVAL '20' MINUTE, INTERVAL '15' MINUTE), MAX(n) FROM hits GROUP BY kind, HOP(ts, INTERVAL '20' MINUTE, INTERVAL '15' MINUTE)",
    "SELECT kind, TUMBLE_START(ts, INTERVAL '1' HOUR), TUMBLE_END(ts, INTERVAL '1' HOUR), COUNT(*) FROM hits WHERE ts IS NOT NULL GROUP BY kind, TUMBLE(ts, INTERVAL '1' HOUR)",
    "SELECT date_bin(INTERVAL '25 minutes', ts, TIMESTAMP '2024-01-01 00:07:00'), SUM(n) FROM hits WHERE ts IS NOT NULL GROUP BY 1",
    "SELECT id, kind, ts FROM (SELECT id, kind, ts, ROW_NUMBER() OVER (PARTITION BY kind ORDER BY ts DESC, id) AS rn FROM hits) WHERE rn <= 2",
];

/// A random history of `hits` (inserts, updates moving rows between windows, deletes,
/// truncates), fed in random batches with snapshots, checked for every window query.
fn check_windows(seed: u64) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut model = Model::new(Catalog::from_prisma(SCHEMA).map_err(|e| e.to_string())?);
    let mut sent: Vec<Sent> = Vec::new();
    let mut send = |value: serde_json::Value| {
        sent.push(Sent {
            topic: "app.public.hits",
            key: None,
            value: Some(value.to_string()),
            replay: false,
        })
    };
    for _ in 0..rng.random_range(0..60) {
        let id = rng.random_range(0..10);
        if rng.random_bool(0.8) {
            let kind = ["a", "b"][rng.random_range(0..2)];
            let minute: Option<i64> = rng.random_bool(0.9).then(|| rng.random_range(0..240));
            let n = rng.random_range(0..100);
            let ts = minute.map(|m| format!("2024-01-01T{:02}:{:02}:00Z", m / 60, m % 60));
            let after = json!({"id": id, "kind": kind, "ts": ts, "n": n});
            send(json!({"before": null, "after": after, "op": "u"}));
            let micros = minute.map(|m| 1_704_067_200_000_000 + m * 60_000_000);
            model.upsert(
                "hits",
                vec![
                    ScalarValue::Int32(Some(id)),
                    ScalarValue::Utf8(Some(kind.into())),
                    ScalarValue::TimestampMicrosecond(micros, None),
                    ScalarValue::Int32(Some(n)),
                ],
            );
        } else if rng.random_bool(0.9) {
            let before = json!({"id": id, "kind": null, "ts": null, "n": null});
            send(json!({"before": before, "after": null, "op": "d"}));
            model.delete("hits", &[ScalarValue::Int32(Some(id))]);
        } else {
            send(json!({"before": null, "after": null, "op": "t"}));
            model.truncate("hits");
        }
    }
    for sql in WINDOW_QUERIES {
        let expected = sorted(model.batch_query(sql)?);
        let got = run_incremental(SCHEMA, sql, &sent, 8, &mut rng)?;
        if got != expected {
            let records: Vec<&str> = sent.iter().filter_map(|s| s.value.as_deref()).collect();
            return Err(format!(
                "{sql}\n  eddy:  {got:?}\n  batch: {expected:?}\n  records:\n    {}",
                records.join("\n    ")
            ));
        }
    }
    Ok(())
}

#[test]
fn random_changelogs_fold_to_batch_top_n_and_windows() {
    run_cases(80, |seed| {
        check_queries(seed, QUERIES).and_then(|()| check_windows(seed))
    });
}
