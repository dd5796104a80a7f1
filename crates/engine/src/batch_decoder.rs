//! The decoding half of a pipeline: records in, decoded batches out, on any thread.

use std::collections::HashMap;

use arrow::compute::concat;

use crate::debezium::{Event, Images, TableDecoder, table_of_topic};
use crate::error::{Error, Result};
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
    /// The last topic looked up, and its source: most records follow one of the same topic,
    /// and comparing the name is cheaper than hashing it.
    last_topic: Option<(String, Option<usize>)>,
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

/// Records per thread below which [`decode_in_parallel`] is not worth a thread: starting one
/// costs about as much as decoding a few dozen records.
pub const RECORDS_PER_THREAD: usize = 256;

impl DecodedBatch {
    /// Records in the batch, including those ignored or refused.
    pub fn records(&self) -> u64 {
        self.counts.records
    }

    /// Appends `next`, decoded after this batch: the result is the batch one decoder would
    /// have finished after pushing both batches' records (ordinals and image rows of `next`
    /// follow this batch's).
    pub fn append(&mut self, next: DecodedBatch) -> Result<()> {
        let ordinals = self.counts.records;
        for ((events, images), (next_events, next_images)) in
            self.tables.iter_mut().zip(next.tables)
        {
            let rows = images.rows;
            events.extend(next_events.into_iter().map(|(ordinal, mut event)| {
                for image in [&mut event.before, &mut event.after, &mut event.key]
                    .into_iter()
                    .flatten()
                {
                    image.row += rows;
                }
                (ordinal + ordinals, event)
            }));
            for (column, next_column) in images.columns.iter_mut().zip(&next_images.columns) {
                *column = concat(&[column.as_ref(), next_column.as_ref()])?;
            }
            images.rows += next_images.rows;
        }
        self.counts += next.counts;
        Ok(())
    }
}

/// Decodes `records` as one batch, in contiguous runs of at least `per_thread` records (such
/// as [`RECORDS_PER_THREAD`]) on up to as many threads as there are `decoders`, the first run
/// on this thread: the batch one decoder would make of them, the same whatever the number of
/// threads. Also returns the records refused, each with its index in `records`. The decoders
/// must have nothing pushed since they last finished.
pub fn decode_in_parallel(
    decoders: &mut [BatchDecoder],
    records: &[Record<'_>],
    per_thread: usize,
) -> Result<(DecodedBatch, Vec<(usize, Error)>)> {
    let threads = (records.len() / per_thread.max(1)).clamp(1, decoders.len().max(1));
    let Some((first, others)) = decoders[..threads].split_first_mut() else {
        return Err(Error::OutOfOrder(
            "a batch is decoded by one decoder at least".into(),
        ));
    };
    let run = records.len().div_ceil(threads);
    let mut runs = records.chunks(run.max(1));
    let first_run = runs.next().unwrap_or_default();
    std::thread::scope(|scope| {
        let spawned: Vec<_> = (others.iter_mut().zip(runs).enumerate())
            .map(|(i, (decoder, chunk))| scope.spawn(move || decoder.decode(chunk, (i + 1) * run)))
            .collect();
        let (mut batch, mut refused) = first.decode(first_run, 0)?;
        for thread in spawned {
            let (next, next_refused) = thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
            batch.append(next)?;
            refused.extend(next_refused);
        }
        Ok((batch, refused))
    })
}

impl BatchDecoder {
    /// A decoder over `tables`, named by `names` (the same order).
    pub(crate) fn new(tables: Vec<TableDecoder>, names: Vec<String>) -> Self {
        Self {
            pending: tables.iter().map(|_| Vec::new()).collect(),
            tables,
            names,
            topics: HashMap::new(),
            last_topic: None,
            counts: Stats::default(),
        }
    }

    /// A decoder of the same tables and columns, with nothing pushed and no cache.
    pub(crate) fn fresh(&self) -> Self {
        Self::new(
            self.tables.iter().map(TableDecoder::fresh).collect(),
            self.names.clone(),
        )
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

    /// Pushes `records` and finishes them as a batch; refused records are returned with their
    /// index in `records` plus `first`.
    fn decode(
        &mut self,
        records: &[Record<'_>],
        first: usize,
    ) -> Result<(DecodedBatch, Vec<(usize, Error)>)> {
        let refused = (records.iter().enumerate())
            .filter_map(|(i, record)| self.push(*record).err().map(|e| (first + i, e)))
            .collect();
        Ok((self.finish()?, refused))
    }

    fn source_of(&mut self, topic: &str) -> Option<usize> {
        if let Some((last, index)) = &self.last_topic
            && last == topic
        {
            return *index;
        }
        let index = match self.topics.get(topic) {
            Some(index) => *index,
            None => {
                let table = table_of_topic(topic);
                let index = self.names.iter().position(|name| name == table);
                self.topics.insert(topic.to_string(), index);
                index
            }
        };
        // Reuses the last name's buffer: a change of topic allocates only for a longer name.
        let (last, last_index) = self.last_topic.get_or_insert_with(Default::default);
        last.clear();
        last.push_str(topic);
        *last_index = index;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{JobSpec, Pipeline};
    use eddy_workload::{Generator, Options, Table};

    #[test]
    fn a_split_batch_is_the_batch_one_decoder_makes() {
        let pipeline = Pipeline::new(JobSpec {
            schema: eddy_workload::SCHEMA.into(),
            sql: eddy_workload::query("q1").unwrap().sql.into(),
            decode: Default::default(),
        })
        .unwrap();
        let mut generator = Generator::new(Options::default());
        let topic = generator.topic(Table::Orders);
        let values: Vec<String> = (0..40)
            .map(|i| {
                let (mut key, mut value) = (String::new(), String::new());
                generator.next_into(&mut key, &mut value);
                if i == 5 || i == 33 {
                    "{not json".into()
                } else {
                    value
                }
            })
            .collect();
        let records: Vec<Record<'_>> = (values.iter().enumerate())
            .map(|(i, value)| Record {
                topic: if i % 7 == 3 {
                    "bench.public.other"
                } else {
                    &topic
                },
                key: None,
                value: Some(value.as_bytes()),
            })
            .collect();
        let mut one = [pipeline.decoder()];
        let (whole, whole_refused) = decode_in_parallel(&mut one, &records, 1).unwrap();
        let mut three: Vec<_> = (0..3).map(|_| pipeline.decoder()).collect();
        let (split, split_refused) = decode_in_parallel(&mut three, &records, 1).unwrap();

        let indices = |refused: &[(usize, Error)]| refused.iter().map(|r| r.0).collect::<Vec<_>>();
        assert_eq!(indices(&whole_refused), [5, 33]);
        assert_eq!(indices(&split_refused), [5, 33]);
        assert_eq!(split.counts, whole.counts);
        assert_eq!(split.counts.ignored, 6);
        for ((events, images), (split_events, split_images)) in
            whole.tables.iter().zip(&split.tables)
        {
            assert_eq!(events.len(), 32);
            assert_eq!(split_events, events);
            assert_eq!(split_images.rows, images.rows);
            assert_eq!(split_images.columns, images.columns);
        }
        assert!(
            three.iter().all(BatchDecoder::is_empty),
            "each decoder finished its run"
        );
    }
}
