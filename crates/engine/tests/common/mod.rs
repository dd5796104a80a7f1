//! Test support: a reference database model, DataFusion batch answers, and folding of Eddy's
//! output, so incremental results can be checked against a batch recomputation.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};
use eddy_engine::schema::{Catalog, TableDef};
use eddy_engine::{ChangeKind, JobSpec, Pipeline, Record, ResultChange};
use rand::RngExt;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// What a database holds: every table's current rows (all columns, in declaration order).
/// It is maintained with the database's own semantics, never from Debezium's images.
pub struct Model {
    pub catalog: Catalog,
    pub tables: HashMap<String, Vec<Vec<ScalarValue>>>,
}

impl Model {
    pub fn new(catalog: Catalog) -> Self {
        let tables = catalog
            .tables
            .iter()
            .map(|t| (t.name.clone(), Vec::new()))
            .collect();
        Self { catalog, tables }
    }

    pub fn table(&self, name: &str) -> &TableDef {
        self.catalog.table(name).expect("table in catalog")
    }

    fn key_of(&self, table: &str, row: &[ScalarValue]) -> Vec<ScalarValue> {
        self.table(table)
            .primary_key
            .iter()
            .map(|&i| row[i].clone())
            .collect()
    }

    /// Inserts or replaces the row with the same primary key.
    pub fn upsert(&mut self, table: &str, row: Vec<ScalarValue>) {
        let key = self.key_of(table, &row);
        self.delete(table, &key);
        self.tables.get_mut(table).expect("table").push(row);
    }

    /// Deletes the row with this primary key, if any.
    pub fn delete(&mut self, table: &str, key: &[ScalarValue]) {
        let pk = self.table(table).primary_key.clone();
        let rows = self.tables.get_mut(table).expect("table");
        rows.retain(|r| pk.iter().zip(key).any(|(&i, k)| &r[i] != k));
    }

    /// Appends a row (tables without a primary key).
    pub fn append(&mut self, table: &str, row: Vec<ScalarValue>) {
        self.tables.get_mut(table).expect("table").push(row);
    }

    /// Removes one row equal to `row` (tables without a primary key).
    pub fn remove_one(&mut self, table: &str, row: &[ScalarValue]) {
        let rows = self.tables.get_mut(table).expect("table");
        if let Some(at) = rows.iter().position(|r| r.as_slice() == row) {
            rows.remove(at);
        }
    }

    pub fn truncate(&mut self, table: &str) {
        self.tables.get_mut(table).expect("table").clear();
    }

    /// The query's answer over the current rows, computed by DataFusion in batch.
    pub fn batch_query(&self, sql: &str) -> Result<Vec<Vec<ScalarValue>>, String> {
        let config = SessionConfig::new().with_target_partitions(1);
        let ctx = SessionContext::new_with_config(config);
        // Eddy's SUM (PostgreSQL's result types), so batch and incremental answers agree.
        for udaf in eddy_engine::plan::functions::udafs() {
            ctx.register_udaf(udaf);
        }
        // Flink's TUMBLE/HOP as Eddy rewrites them (the rewrite itself is checked by sql/*.slt).
        for udf in eddy_engine::plan::time_windows::udfs() {
            ctx.register_udf(udf);
        }
        let sql = eddy_engine::plan::time_windows::rewrite_sql(sql).map_err(|e| e.to_string())?;
        for table in &self.catalog.tables {
            let schema = table.arrow_schema();
            let rows = &self.tables[&table.name];
            let columns = (0..table.columns.len())
                .map(|c| {
                    if rows.is_empty() {
                        Ok(datafusion::arrow::array::new_empty_array(
                            schema.field(c).data_type(),
                        ))
                    } else {
                        ScalarValue::iter_to_array(rows.iter().map(|r| r[c].clone()))
                    }
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            let batch = RecordBatch::try_new_with_options(
                schema.clone(),
                columns,
                &datafusion::arrow::array::RecordBatchOptions::new()
                    .with_row_count(Some(rows.len())),
            )
            .map_err(|e| e.to_string())?;
            let provider =
                MemTable::try_new(schema, vec![vec![batch]]).map_err(|e| e.to_string())?;
            ctx.register_table(table.name.as_str(), Arc::new(provider))
                .map_err(|e| e.to_string())?;
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(|e| e.to_string())?;
        let batches = runtime
            .block_on(async { ctx.sql(&sql).await?.collect().await })
            .map_err(|e| e.to_string())?;
        let mut rows = Vec::new();
        for batch in batches {
            for r in 0..batch.num_rows() {
                rows.push(
                    batch
                        .columns()
                        .iter()
                        .map(|c| ScalarValue::try_from_array(c, r))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| e.to_string())?,
                );
            }
        }
        Ok(rows)
    }
}

/// A value as test expectations spell it: NULL, decimals with their scale, floats rounded to
/// 6 decimals (incremental and batch float sums may differ in the last bits).
pub fn display(value: &ScalarValue) -> String {
    match value {
        v if v.is_null() => "NULL".into(),
        ScalarValue::Float64(Some(f)) => float(*f),
        ScalarValue::Float32(Some(f)) => float(f64::from(*f)),
        ScalarValue::Utf8(Some(s)) => s.clone(),
        other => {
            let mut out = String::new();
            eddy_engine::output::write_value(&mut out, other);
            out.trim_matches('"').to_string()
        }
    }
}

fn float(f: f64) -> String {
    let s = format!("{f:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

pub fn display_row(row: &[ScalarValue]) -> Vec<String> {
    row.iter().map(display).collect()
}

/// Rows as sorted display strings, for order-insensitive comparison.
pub fn sorted(rows: impl IntoIterator<Item = Vec<ScalarValue>>) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = rows.into_iter().map(|r| display_row(&r)).collect();
    out.sort();
    out
}

/// The result as a consumer of Eddy's changes sees it: each change applied in order.
/// Applying also checks the changelog is coherent: a change's `before` is exactly the row
/// the consumer holds for that key.
#[derive(Default)]
pub struct Folded {
    rows: HashMap<Vec<String>, Vec<ScalarValue>>,
}

impl Folded {
    pub fn apply(&mut self, changes: &[ResultChange]) -> Result<(), String> {
        for change in changes {
            let key = display_row(&change.key);
            let held = self.rows.get(&key);
            match (change.kind, held, &change.before) {
                (ChangeKind::Insert, None, None) => {}
                (ChangeKind::Update | ChangeKind::Delete, Some(held), Some(before))
                    if display_row(held) == display_row(before) => {}
                _ => {
                    return Err(format!(
                        "incoherent change {:?} for key {key:?}: consumer holds {:?}",
                        change,
                        held.map(|h| display_row(h))
                    ));
                }
            }
            match &change.after {
                Some(after) => self.rows.insert(key, after.clone()),
                None => self.rows.remove(&key),
            };
        }
        Ok(())
    }

    pub fn rows(&self) -> Vec<Vec<String>> {
        sorted(self.rows.values().cloned())
    }
}

/// Runs a differential check per seed: the one `EDDY_DIFF_SEED` names, else `EDDY_DIFF_CASES`
/// (default `default_cases`) consecutive seeds from a random base; the first failure panics
/// with the seed that replays it.
pub fn run_cases(default_cases: u64, check: impl Fn(u64) -> Result<(), String>) {
    let seeds: Vec<u64> = match std::env::var("EDDY_DIFF_SEED") {
        Ok(seed) => vec![seed.parse().expect("EDDY_DIFF_SEED is a number")],
        Err(_) => {
            let cases: u64 = std::env::var("EDDY_DIFF_CASES")
                .ok()
                .and_then(|c| c.parse().ok())
                .unwrap_or(default_cases);
            let base: u64 = rand::random();
            (0..cases).map(|i| base.wrapping_add(i)).collect()
        }
    };
    for seed in seeds {
        if let Err(failure) = check(seed) {
            panic!("case EDDY_DIFF_SEED={seed} failed:\n{failure}");
        }
    }
}

/// A random interleaving of `partitions` that keeps each one's order, as a consumer of
/// several Kafka partitions may read them.
pub fn interleave<T: Clone>(partitions: &[Vec<T>], rng: &mut StdRng) -> Vec<T> {
    let mut picks: Vec<usize> = partitions
        .iter()
        .enumerate()
        .flat_map(|(p, records)| std::iter::repeat_n(p, records.len()))
        .collect();
    picks.shuffle(rng);
    let mut next = vec![0; partitions.len()];
    picks
        .into_iter()
        .map(|p| {
            next[p] += 1;
            partitions[p][next[p] - 1].clone()
        })
        .collect()
}

/// A record as a connector would send it.
#[derive(Clone, Debug)]
pub struct Sent {
    pub topic: &'static str,
    pub key: Option<String>,
    pub value: Option<String>,
    /// A re-delivery. Replays are absorbed, but a replayed TOAST update of a row that a later
    /// record deleted cannot be resolved and is reported (the replayed delete follows it).
    pub replay: bool,
}

/// The share of differential cases also run with decoding on other threads: enough to catch a
/// difference, without tripling the tests' time.
const THREADED_SHARE: f64 = 0.25;

/// Runs `sql` over `schema` incrementally: the records in random batches of fewer than
/// `batch` records, with a snapshot and restore after one batch in five, and folds the
/// output. A record the pipeline refuses is an error, unless it is a replay.
///
/// In a share of the cases ([`THREADED_SHARE`]), the same batches run three times: pushed to
/// the pipeline and flushed; decoded by a [`eddy_engine::BatchDecoder`] on a second thread
/// while the pipeline applies the batch before; and each batch split across three decoders
/// on three threads ([`eddy_engine::decode_in_parallel`]). All must give the same changes,
/// batch by batch.
pub fn run_incremental(
    schema: &str,
    sql: &str,
    sent: &[Sent],
    batch: usize,
    rng: &mut StdRng,
) -> Result<Vec<Vec<String>>, String> {
    let spec = JobSpec {
        schema: schema.into(),
        sql: sql.into(),
        decode: Default::default(),
    };
    let mut batches = Vec::new();
    let mut at = 0;
    while at < sent.len() || batches.is_empty() {
        let end = (at + rng.random_range(1..batch)).min(sent.len());
        batches.push((at..end, rng.random_bool(0.2)));
        at = end;
    }
    let (rows, changes) = run_batches(&spec, sent, &batches, Decoding::Pushed)?;
    if !rng.random_bool(THREADED_SHARE) {
        return Ok(rows);
    }
    for decoding in [Decoding::Ahead, Decoding::Split] {
        let (_, threaded) = run_batches(&spec, sent, &batches, decoding)?;
        if threaded != changes {
            return Err(format!(
                "decoding {decoding:?} changed the output: {threaded:?}, not {changes:?}"
            ));
        }
    }
    Ok(rows)
}

/// Where a batch's records are decoded.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Decoding {
    /// Pushed to the pipeline itself, and flushed.
    Pushed,
    /// On a second thread, while the pipeline applies the batch before.
    Ahead,
    /// Split across three decoders on three threads, then applied.
    Split,
}

fn record(sent: &Sent) -> Record<'_> {
    Record {
        topic: sent.topic,
        key: sent.key.as_deref().map(str::as_bytes),
        value: sent.value.as_deref().map(str::as_bytes),
    }
}

/// Result rows as text, sorted.
type Rows = Vec<Vec<String>>;

/// Runs `batches` (ranges of `sent`, and whether to snapshot and restore after each): the
/// folded result and each batch's changes, as text.
fn run_batches(
    spec: &JobSpec,
    sent: &[Sent],
    batches: &[(std::ops::Range<usize>, bool)],
    decoding: Decoding,
) -> Result<(Rows, Vec<Vec<String>>), String> {
    let mut pipeline = Pipeline::new(spec.clone()).map_err(|e| e.to_string())?;
    let mut decoder = pipeline.decoder();
    let mut split: Vec<_> = (0..3).map(|_| pipeline.decoder()).collect();
    let (sender, receiver) = std::sync::mpsc::sync_channel(1);
    std::thread::scope(|scope| {
        // Dropped when this closure returns, before the scope waits for the decoding thread,
        // so a thread blocked on a full channel sees it closed.
        let receiver = receiver;
        if decoding == Decoding::Ahead {
            scope.spawn(move || {
                for (range, _) in batches {
                    let decoded = sent[range.clone()]
                        .iter()
                        .try_for_each(|r| {
                            (decoder.push(record(r)))
                                .map_err(|e| format!("push refused {r:?}: {e}"))
                        })
                        .and_then(|()| decoder.finish().map_err(|e| e.to_string()));
                    if sender.send(decoded).is_err() {
                        return;
                    }
                }
            });
        }
        let mut folded = Folded::default();
        let mut changes = Vec::new();
        let mut received = receiver.iter();
        for (range, restore) in batches {
            let rejected = match decoding {
                Decoding::Ahead => {
                    let decoded = received.next().ok_or("the decoding thread stopped")??;
                    pipeline.apply(decoded)
                }
                Decoding::Split => {
                    let records: Vec<_> = sent[range.clone()].iter().map(record).collect();
                    let (decoded, refused) =
                        eddy_engine::decode_in_parallel(&mut split, &records, 1)
                            .map_err(|e| e.to_string())?;
                    if let Some((i, e)) = refused.first() {
                        return Err(format!("push refused {:?}: {e}", records[*i]));
                    }
                    pipeline.apply(decoded)
                }
                Decoding::Pushed => {
                    for r in &sent[range.clone()] {
                        (pipeline.push(record(r)))
                            .map_err(|e| format!("push refused {r:?}: {e}"))?;
                    }
                    pipeline.flush()
                }
            }
            .map_err(|e| e.to_string())?;
            if let Some(r) = rejected.iter().find(|r| !sent[r.ordinal as usize].replay) {
                return Err(format!("flush rejected record {}: {}", r.ordinal, r.error));
            }
            let drained = pipeline.drain();
            folded.apply(&drained)?;
            // A batch has at most one change per result row, in no particular order.
            let mut batch: Vec<String> = drained.iter().map(|c| format!("{c:?}")).collect();
            batch.sort();
            changes.push(batch);
            if *restore {
                let bytes = pipeline.snapshot().map_err(|e| e.to_string())?;
                pipeline = Pipeline::restore(&bytes).map_err(|e| e.to_string())?;
            }
        }
        // The result read from the state is what folding every change gives.
        let current = sorted(pipeline.result().map_err(|e| e.to_string())?);
        if current != folded.rows() {
            return Err(format!(
                "the result from the state {current:?} is not the folded changes {:?}",
                folded.rows()
            ));
        }
        Ok((folded.rows(), changes))
    })
}
