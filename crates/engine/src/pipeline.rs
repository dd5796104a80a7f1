//! The engine's entry point: Debezium records in, consolidated result changes out.
//!
//! A [`Pipeline`] is built from a [`JobSpec`] (Prisma schema + SQL). Records are pushed one
//! at a time and decoded at once, so a malformed record is refused on the spot and leaves no
//! trace. [`Pipeline::flush`] then applies everything pushed since the last flush as one
//! batch: normalizers first, then the operator tree, then consolidation, so the result
//! changes it produces are net over the whole batch. [`Pipeline::drain`] hands them out.
//!
//! [`Pipeline::snapshot`] captures the complete state (the rows each normalizer keeps and
//! every operator's state) as bytes, and [`Pipeline::restore`] rebuilds a pipeline that goes
//! on exactly where the snapshot was taken.

use std::sync::Arc;

use arrow::datatypes::{FieldRef, Schema};
use datafusion_common::ScalarValue;
use serde::{Deserialize, Serialize};

use crate::batch_decoder::{BatchDecoder, DecodedBatch};
use crate::consolidate::{Consolidator, ResultChange};
use crate::debezium::{DecodeOptions, TableDecoder, value};
use crate::error::{Error, Result};
use crate::memory::StateUsage;
use crate::normalize::{Normalizer, TableOrder, TableState};
use crate::ops::Node;
use crate::plan;
use crate::rows::RowCodec;
use crate::schema::Catalog;

/// What a job runs: the database's Prisma schema and the query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// The Prisma schema source.
    pub schema: String,
    /// One SQL query over the schema's tables (database names).
    pub sql: String,
    /// How to read what schemaless messages do not say.
    #[serde(default)]
    pub decode: DecodeOptions,
}

/// One Kafka record: the topic names the table (`<prefix>.<schema>.<table>`).
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub topic: &'a str,
    pub key: Option<&'a [u8]>,
    /// `None` (or JSON `null`) is a tombstone.
    pub value: Option<&'a [u8]>,
}

/// A record accepted by [`Pipeline::push`] but refused when applied (for example an unchanged
/// TOAST value for a row never seen); it changed nothing.
#[derive(Debug)]
pub struct RejectedEvent {
    /// The record's position among all records pushed to the pipeline, from 0.
    pub ordinal: u64,
    pub error: Error,
}

/// Counters since the pipeline was created (or restored).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Records pushed.
    pub records: u64,
    /// Records for tables the query does not read, tombstones and transaction markers.
    pub ignored: u64,
    /// Records refused, at push or at flush.
    pub rejected: u64,
    /// Result changes produced.
    pub changes: u64,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, other: Stats) {
        self.records += other.records;
        self.ignored += other.ignored;
        self.rejected += other.rejected;
        self.changes += other.changes;
    }
}

/// See [`Pipeline::state_size`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StateSize {
    /// Rows kept by the normalizers (live primary keys).
    pub kept_rows: usize,
    /// Serialized bytes of those rows.
    pub table_bytes: usize,
    /// Serialized bytes of the operators' state (groups and their accumulators).
    pub operator_bytes: usize,
}

#[derive(Debug)]
struct SourceTable {
    name: String,
    normalizer: Normalizer,
}

/// An incremental query over Debezium changes.
///
/// ```
/// use eddy_engine::pipeline::{JobSpec, Pipeline, Record};
///
/// let spec = JobSpec {
///     schema: r#"
///         datasource db { provider = "postgresql" url = env("DATABASE_URL") }
///         model Order {
///           id     Int     @id
///           status String
///           @@map("orders")
///         }"#
///     .into(),
///     sql: "SELECT status, COUNT(*) AS n FROM orders GROUP BY status".into(),
///     decode: Default::default(),
/// };
/// let mut pipeline = Pipeline::new(spec)?;
/// let insert = br#"{"before":null,"after":{"id":1,"status":"new"},"op":"c"}"#;
/// pipeline.push(Record { topic: "app.public.orders", key: None, value: Some(insert) })?;
/// pipeline.flush()?;
/// let changes = pipeline.drain();
/// assert_eq!(changes.len(), 1);
/// assert_eq!(changes[0].after.as_ref().unwrap()[1].to_string(), "1");
///
/// // The state survives a snapshot.
/// let bytes = pipeline.snapshot()?;
/// let mut restored = Pipeline::restore(&bytes)?;
/// let update = br#"{"before":null,"after":{"id":1,"status":"paid"},"op":"u"}"#;
/// restored.push(Record { topic: "app.public.orders", key: None, value: Some(update) })?;
/// restored.flush()?;
/// assert_eq!(restored.drain().len(), 2); // "new" leaves, "paid" enters
/// # Ok::<(), eddy_engine::Error>(())
/// ```
#[derive(Debug)]
pub struct Pipeline {
    spec: JobSpec,
    sources: Vec<SourceTable>,
    /// Decodes what [`Pipeline::push`] is given, for the next [`Pipeline::flush`].
    decoder: BatchDecoder,
    root: Node,
    consolidator: Consolidator,
    key_fields: Vec<FieldRef>,
    value_fields: Vec<FieldRef>,
    output: Vec<ResultChange>,
    /// Whether the operator tree has run once (a global aggregate emits its row then).
    started: bool,
    stats: Stats,
}

impl Pipeline {
    /// Parses the schema and plans the query; errors say what in either is wrong.
    pub fn new(spec: JobSpec) -> Result<Self> {
        let catalog = Catalog::from_prisma(&spec.schema)?;
        let plan = plan::plan(&catalog, &spec.sql)?;
        let mut decoders = Vec::with_capacity(plan.sources.len());
        let sources = plan
            .sources
            .iter()
            .map(|source| {
                let table = Arc::new(catalog.tables[source.table].clone());
                value::check_settings(&table, &source.columns, &spec.decode)
                    .map_err(Error::Query)?;
                let kept: Vec<_> = source
                    .columns
                    .iter()
                    .map(|&c| table.arrow_schema().field(c).clone())
                    .collect();
                let source_table = SourceTable {
                    name: table.name.clone(),
                    normalizer: Normalizer::new(
                        &table.name,
                        Arc::new(Schema::new(kept)),
                        source.key_positions.clone(),
                    )?,
                };
                decoders.push(
                    TableDecoder::new(
                        table,
                        source.columns.clone(),
                        source.key_positions.clone(),
                        spec.decode,
                    )
                    .with_guards(source.guards.clone()),
                );
                Ok(source_table)
            })
            .collect::<Result<Vec<_>>>()?;
        let decoder = BatchDecoder::new(decoders, sources.iter().map(|s| s.name.clone()).collect());
        let types = |fields: &[FieldRef]| fields.iter().map(|f| f.data_type().clone()).collect();
        let consolidator = Consolidator::new(
            RowCodec::for_equality(types(&plan.key_fields))?,
            RowCodec::for_equality(types(&plan.value_fields))?,
        );
        Ok(Self {
            spec,
            sources,
            decoder,
            root: plan.root,
            consolidator,
            key_fields: plan.key_fields,
            value_fields: plan.value_fields,
            output: Vec::new(),
            started: false,
            stats: Stats::default(),
        })
    }

    pub fn spec(&self) -> &JobSpec {
        &self.spec
    }

    /// The columns identifying a result row.
    pub fn key_fields(&self) -> &[FieldRef] {
        &self.key_fields
    }

    /// The result's columns.
    pub fn value_fields(&self) -> &[FieldRef] {
        &self.value_fields
    }

    /// Counters so far, records pushed but not yet flushed included.
    pub fn stats(&self) -> Stats {
        let mut stats = self.stats;
        stats += self.decoder.counts();
        stats
    }

    /// Rows each source table's normalizer keeps, by table name.
    pub fn kept_rows(&self) -> Vec<(&str, usize)> {
        self.sources
            .iter()
            .map(|s| (s.name.as_str(), s.normalizer.state().len()))
            .collect()
    }

    /// How each source table's changes have been ordered (by source position or arrival).
    pub fn ordering(&self) -> Vec<TableOrder> {
        self.sources
            .iter()
            .map(|s| s.normalizer.ordering())
            .collect()
    }

    /// The state's size as a snapshot holds it: what the normalizers keep and what the
    /// operators keep.
    pub fn state_size(&self) -> Result<StateSize> {
        let mut size = StateSize::default();
        for source in &self.sources {
            let state = source.normalizer.state();
            size.kept_rows += state.len();
            size.table_bytes += postcard::to_allocvec(state)
                .map_err(|e| Error::Snapshot(e.to_string()))?
                .len();
        }
        for op in self.root.operators() {
            size.operator_bytes += op.snapshot()?.len();
        }
        Ok(size)
    }

    /// What each measured part of the operators' state holds and costs (each join side), in
    /// the plan's pre-order.
    pub fn state_usage(&self) -> Result<Vec<StateUsage>> {
        let mut parts = Vec::new();
        for op in self.root.operators() {
            parts.extend(op.state_usage()?);
        }
        Ok(parts)
    }

    /// The incremental plan as text: each source table with the columns its normalizer keeps,
    /// then the operator tree (each operator's computation, state and output key) and the
    /// result's key. `eddy run --explain` prints it.
    pub fn explain(&self) -> Result<String> {
        let catalog = Catalog::from_prisma(&self.spec.schema)?;
        let plan = plan::plan(&catalog, &self.spec.sql)?;
        let mut out = String::from("sources (rows kept by primary key):\n");
        let names: Vec<String> = plan
            .sources
            .iter()
            .map(|source| {
                let table = &catalog.tables[source.table];
                let columns: Vec<&str> = source
                    .columns
                    .iter()
                    .map(|&c| table.columns[c].name.as_str())
                    .collect();
                let key: Vec<&str> = table
                    .primary_key
                    .iter()
                    .map(|&c| table.columns[c].name.as_str())
                    .collect();
                out.push_str(&format!(
                    "  {}: keeps ({}); key ({})\n",
                    table.name,
                    columns.join(", "),
                    key.join(", ")
                ));
                table.name.clone()
            })
            .collect();
        out.push_str("operators (output first):\n");
        out.push_str(&self.root.explain(1, &|i| format!("<- source {}", names[i])));
        let key: Vec<&str> = self.key_fields.iter().map(|f| f.name().as_str()).collect();
        out.push_str(&format!("result key: ({})\n", key.join(", ")));
        Ok(out)
    }

    /// The query's current result, every row of it, ordered by the result's key: what a
    /// consumer folding every change published so far holds. Computed by a fresh plan of the
    /// same query from the rows the normalizers keep (nothing else is needed: the operators'
    /// state is a function of those rows), so it costs one run of the query over them, and
    /// that much memory again while it runs: for looking at the answer, not for each batch.
    pub fn result(&self) -> Result<Vec<Vec<ScalarValue>>> {
        let mut fresh = Pipeline::new(self.spec.clone())?;
        let contents = (self.sources.iter())
            .map(|s| s.normalizer.contents())
            .collect::<Result<Vec<_>>>()?;
        let out = fresh.root.step(&contents)?;
        let mut rows: Vec<(Vec<ScalarValue>, Vec<ScalarValue>)> =
            (fresh.consolidator.consolidate(&out)?)
                .into_iter()
                .filter_map(|change| Some((change.key, change.after?)))
                .collect();
        rows.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
        Ok(rows.into_iter().map(|(_, row)| row).collect())
    }

    /// The tables (database names) the query reads.
    pub fn tables(&self) -> impl Iterator<Item = &str> {
        self.sources.iter().map(|s| s.name.as_str())
    }

    /// Decodes a record and queues it for the next flush. An error means the record was
    /// refused and nothing else changed; the pipeline can go on.
    pub fn push(&mut self, record: Record<'_>) -> Result<()> {
        self.decoder.push(record)
    }

    /// Applies every record pushed since the last flush as one batch; returns the records
    /// refused while applying them. Result changes wait for [`Pipeline::drain`].
    pub fn flush(&mut self) -> Result<Vec<RejectedEvent>> {
        let batch = self.decoder.finish()?;
        self.apply(batch)
    }

    /// A decoder of this pipeline's records that can run on another thread: its batches go
    /// to [`Pipeline::apply`] in the order they were finished, which gives the pipeline the
    /// same state as pushing and flushing the same records would. Records pushed to the
    /// pipeline itself must be flushed first.
    pub fn decoder(&self) -> BatchDecoder {
        self.decoder.fresh()
    }

    /// Applies one decoded batch: normalizers first, then the operator tree, then
    /// consolidation; returns the records refused while applying them (their ordinals count
    /// every record the pipeline was given, from 0). Result changes wait for
    /// [`Pipeline::drain`].
    pub fn apply(&mut self, batch: DecodedBatch) -> Result<Vec<RejectedEvent>> {
        if !self.decoder.is_empty() {
            return Err(Error::OutOfOrder(
                "records pushed to the pipeline itself are queued: flush before applying \
                 another decoder's batch"
                    .into(),
            ));
        }
        let first = self.stats.records;
        let mut rejected = Vec::new();
        let mut changes = Vec::with_capacity(self.sources.len());
        let mut any = false;
        for (source, (pending, images)) in self.sources.iter_mut().zip(batch.tables) {
            let (ordinals, events): (Vec<u64>, Vec<_>) = pending.into_iter().unzip();
            let (changed, refused) = source.normalizer.apply(events, &images)?;
            rejected.extend(refused.into_iter().map(|r| RejectedEvent {
                ordinal: first + ordinals[r.index],
                error: r.error,
            }));
            any |= !changed.is_empty();
            changes.push(changed);
        }
        self.stats += batch.counts;
        self.stats.rejected += rejected.len() as u64;
        if any || !self.started {
            self.started = true;
            let out = self.root.step(&changes)?;
            let consolidated = self.consolidator.consolidate(&out)?;
            self.stats.changes += consolidated.len() as u64;
            self.output.extend(consolidated);
        }
        Ok(rejected)
    }

    /// Takes the result changes produced so far, oldest first.
    pub fn drain(&mut self) -> Vec<ResultChange> {
        std::mem::take(&mut self.output)
    }

    /// The complete state as bytes. Call after [`Pipeline::flush`] and [`Pipeline::drain`]:
    /// records still queued or changes not yet drained belong to no snapshot, and asking
    /// for one then is an error rather than a silent loss.
    pub fn snapshot(&self) -> Result<Vec<u8>> {
        if !self.decoder.is_empty() {
            return Err(Error::Snapshot(
                "records are queued: flush before snapshot".into(),
            ));
        }
        if !self.output.is_empty() {
            return Err(Error::Snapshot(
                "result changes are waiting: drain before snapshot".into(),
            ));
        }
        let operators = self
            .root
            .operators()
            .iter()
            .map(|op| op.snapshot())
            .collect::<Result<Vec<_>>>()?;
        let snapshot = SnapshotRef {
            version: SNAPSHOT_VERSION,
            spec: &self.spec,
            started: self.started,
            stats: self.stats,
            tables: self
                .sources
                .iter()
                .map(|s| (s.name.as_str(), s.normalizer.state()))
                .collect(),
            operators,
        };
        let mut bytes =
            postcard::to_allocvec(&snapshot).map_err(|e| Error::Snapshot(e.to_string()))?;
        let checksum = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&checksum.to_le_bytes());
        Ok(bytes)
    }

    /// Rebuilds a pipeline from [`Pipeline::snapshot`]'s bytes.
    pub fn restore(bytes: &[u8]) -> Result<Self> {
        let (body, checksum) = bytes
            .split_last_chunk::<4>()
            .ok_or_else(|| Error::Snapshot("too short".into()))?;
        if crc32fast::hash(body) != u32::from_le_bytes(*checksum) {
            return Err(Error::Snapshot(
                "checksum mismatch: the bytes are damaged".into(),
            ));
        }
        let snapshot: Snapshot =
            postcard::from_bytes(body).map_err(|e| Error::Snapshot(e.to_string()))?;
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(Error::Snapshot(format!(
                "version {} is not {SNAPSHOT_VERSION}",
                snapshot.version
            )));
        }
        let mut pipeline = Pipeline::new(snapshot.spec)?;
        for (name, state) in snapshot.tables {
            let source = pipeline
                .sources
                .iter_mut()
                .find(|s| s.name == name)
                .ok_or_else(|| Error::Snapshot(format!("unknown table `{name}`")))?;
            source.normalizer.restore(state);
        }
        let mut operators = pipeline.root.operators_mut();
        if operators.len() != snapshot.operators.len() {
            return Err(Error::Snapshot(
                "operator count differs from the plan".into(),
            ));
        }
        for (op, state) in operators.iter_mut().zip(&snapshot.operators) {
            op.restore(state)?;
        }
        pipeline.started = snapshot.started;
        pipeline.stats = snapshot.stats;
        Ok(pipeline)
    }
}

/// 2: rows carry their source positions, tables their ordering. 3: an aggregate's calls
/// over one argument share one state.
const SNAPSHOT_VERSION: u32 = 3;

#[derive(Serialize)]
struct SnapshotRef<'a> {
    version: u32,
    spec: &'a JobSpec,
    started: bool,
    stats: Stats,
    tables: Vec<(&'a str, &'a TableState)>,
    operators: Vec<Vec<u8>>,
}

#[derive(Deserialize)]
struct Snapshot {
    version: u32,
    spec: JobSpec,
    started: bool,
    stats: Stats,
    tables: Vec<(String, TableState)>,
    operators: Vec<Vec<u8>>,
}
