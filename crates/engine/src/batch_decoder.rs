//! The decoding half of a pipeline: records in, decoded batches out, on any thread.

use std::collections::HashMap;

use crate::debezium::{Event, Images, TableDecoder, table_of_topic};
use crate::error::Result;
use crate::pipeline::{Record, Stats};

/// Decodes the records of the tables a query reads into batches its
/// [`Pipeline`](crate::Pipeline) applies.
///
/// Decoding keeps no state across records beyond caches (the hints of each inline schema
/// seen), so the batches are the same wherever the decoder runs: a pipeline holds one for
/// [`Pipeline::push`](crate::Pipeline::push), and [`Pipeline::decoder`](crate::Pipeline::decoder)
/// makes another that can decode the next batch on a second thread while the pipeline
/// applies this one ([`Pipeline::apply`](crate::Pipeline::apply)).
#[derive(Debug)]
pub struct BatchDecoder {
    /// The decoders of the tables the query reads, by source (the plan's order).
    tables: Vec<TableDecoder>,
    /// Their names (database names), by source.
    names: Vec<String>,
    /// Each source's events since the last [`BatchDecoder::finish`], with their ordinals.
    pending: Vec<Vec<(u64, Event)>>,
    /// Topic → source, or `None` for topics the query does not read.
    topics: HashMap<String, Option<usize>>,
    /// Records pushed, ignored and refused since the last [`BatchDecoder::finish`].
    counts: Stats,
}

/// One batch of decoded records, ready for [`Pipeline::apply`](crate::Pipeline::apply).
#[derive(Debug)]
pub struct DecodedBatch {
    /// By source: the events, each with its ordinal among the batch's records, and the
    /// images they index.
    pub(crate) tables: Vec<(Vec<(u64, Event)>, Images)>,
    /// The batch's records: pushed, ignored and refused at decoding.
    pub(crate) counts: Stats,
}

impl DecodedBatch {
    /// Records in the batch, including those ignored or refused.
    pub fn records(&self) -> u64 {
        self.counts.records
    }
}

impl BatchDecoder {
    /// A decoder over `tables`, named by `names` (the same order).
    pub(crate) fn new(tables: Vec<TableDecoder>, names: Vec<String>) -> Self {
        Self {
            pending: tables.iter().map(|_| Vec::new()).collect(),
            tables,
            names,
            topics: HashMap::new(),
            counts: Stats::default(),
        }
    }

    /// Decodes a record into the batch being built. An error means the record was refused
    /// and nothing else changed.
    pub fn push(&mut self, record: Record<'_>) -> Result<()> {
        let ordinal = self.counts.records;
        self.counts.records += 1;
        let Some(index) = self.source_of(record.topic) else {
            self.counts.ignored += 1;
            return Ok(());
        };
        match self.tables[index].decode(record.topic, record.key, record.value) {
            Ok(Some(event)) => {
                self.pending[index].push((ordinal, event));
                Ok(())
            }
            Ok(None) => {
                self.counts.ignored += 1;
                Ok(())
            }
            Err(e) => {
                self.counts.rejected += 1;
                Err(e)
            }
        }
    }

    fn source_of(&mut self, topic: &str) -> Option<usize> {
        if let Some(index) = self.topics.get(topic) {
            return *index;
        }
        let table = table_of_topic(topic);
        let index = self.names.iter().position(|name| name == table);
        self.topics.insert(topic.to_string(), index);
        index
    }

    /// What was pushed since the last call, as one batch; the decoder starts a new one.
    pub fn finish(&mut self) -> Result<DecodedBatch> {
        let tables = (self.tables.iter_mut().zip(&mut self.pending))
            .map(|(decoder, pending)| Ok((std::mem::take(pending), decoder.finish()?)))
            .collect::<Result<_>>()?;
        Ok(DecodedBatch {
            tables,
            counts: std::mem::take(&mut self.counts),
        })
    }

    /// Counts of the batch being built.
    pub(crate) fn counts(&self) -> Stats {
        self.counts
    }

    /// Whether records are waiting for [`BatchDecoder::finish`].
    pub(crate) fn is_empty(&self) -> bool {
        self.counts.records == 0
    }
}
