//! An input of JSON lines cut into batches of a fixed number of non-blank lines.
//!
//! The batches are cut before anything is decoded, so they are the same however many
//! threads decode them, and so are the results: a batch's result changes are consolidated,
//! and a different cut would consolidate different changes.

use std::io::BufRead;
use std::ops::Range;

use anyhow::{Context, Result};

/// Cuts an input into [`LineBatch`]es.
pub struct LineBatcher<R> {
    input: R,
    batch_size: usize,
    /// Lines read, blank ones included: the number of the last line read.
    line_number: usize,
    /// Bytes read.
    bytes: u64,
    /// The sequence number the next batch gets.
    next: u64,
}

/// Up to `batch_size` non-blank lines of the input, copied into one buffer: a copy per
/// batch of what the reader's buffer holds, not one per line.
#[derive(Default)]
pub struct LineBatch {
    /// The batch's place in the input: 0 for the first.
    pub sequence: u64,
    /// The input's bytes read up to the batch's end.
    pub bytes: u64,
    data: Vec<u8>,
    /// Each line's number in the input (from 1) and its bytes in `data`.
    lines: Vec<(usize, Range<usize>)>,
}

impl LineBatch {
    /// The batch's lines with their numbers in the input.
    pub fn lines(&self) -> impl Iterator<Item = (usize, &[u8])> {
        self.lines
            .iter()
            .map(|(number, range)| (*number, &self.data[range.clone()]))
    }
}

impl<R: BufRead> LineBatcher<R> {
    /// Batches of `batch_size` (at least 1) non-blank lines of `input`.
    pub fn new(input: R, batch_size: usize) -> Self {
        Self {
            input,
            batch_size: batch_size.max(1),
            line_number: 0,
            bytes: 0,
            next: 0,
        }
    }

    /// Reads the next batch into `batch` (its buffers reused); `false` at the input's end,
    /// when no non-blank line was left. The batch is numbered even when reading fails.
    pub fn next_into(&mut self, batch: &mut LineBatch) -> Result<bool> {
        batch.data.clear();
        batch.lines.clear();
        batch.sequence = self.next;
        self.next += 1;
        while batch.lines.len() < self.batch_size {
            let buffer = self
                .input
                .fill_buf()
                .with_context(|| format!("reading line {}", self.line_number + 1))?;
            if buffer.is_empty() {
                break;
            }
            // The whole lines the buffer holds, as many as the batch takes, in one copy.
            let base = batch.data.len();
            let mut taken = 0;
            for end in memchr::memchr_iter(b'\n', buffer) {
                self.line_number += 1;
                let line = taken..end + 1;
                taken = end + 1;
                if !buffer[line.clone()].trim_ascii().is_empty() {
                    let range = base + line.start..base + line.end;
                    batch.lines.push((self.line_number, range));
                    if batch.lines.len() == self.batch_size {
                        break;
                    }
                }
            }
            if taken > 0 {
                batch.data.extend_from_slice(&buffer[..taken]);
                self.input.consume(taken);
                self.bytes += taken as u64;
                continue;
            }
            // A line the buffer's end cuts (or the input's last, unterminated, line).
            self.line_number += 1;
            let read = self
                .input
                .read_until(b'\n', &mut batch.data)
                .with_context(|| format!("reading line {}", self.line_number))?;
            self.bytes += read as u64;
            if !batch.data[base..].trim_ascii().is_empty() {
                batch.lines.push((self.line_number, base..batch.data.len()));
            }
        }
        batch.bytes = self.bytes;
        Ok(!batch.lines.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use std::io::BufReader;

    use super::*;

    fn batches(input: &str, batch_size: usize, buffer: usize) -> Vec<Vec<(usize, String)>> {
        let reader = BufReader::with_capacity(buffer, input.as_bytes());
        let mut batcher = LineBatcher::new(reader, batch_size);
        let mut batch = LineBatch::default();
        let mut all = Vec::new();
        while batcher.next_into(&mut batch).unwrap() {
            let lines = batch.lines();
            all.push(
                lines
                    .map(|(n, line)| (n, String::from_utf8(line.to_vec()).unwrap()))
                    .collect(),
            );
        }
        all
    }

    #[test]
    fn batches_hold_non_blank_lines_numbered_from_one_whatever_the_buffer() {
        let input = "a\n\nbb\n  \nccc\ndddd";
        let expected = vec![
            vec![(1, "a\n".to_string()), (3, "bb\n".to_string())],
            vec![(5, "ccc\n".to_string()), (6, "dddd".to_string())],
        ];
        for buffer in [1, 2, 3, 5, 64] {
            assert_eq!(batches(input, 2, buffer), expected, "buffer of {buffer}");
        }
    }

    #[test]
    fn the_last_batch_counts_every_byte_read() {
        let input = "x\ny\n\n";
        let reader = BufReader::with_capacity(8, input.as_bytes());
        let mut batcher = LineBatcher::new(reader, 1);
        let mut batch = LineBatch::default();
        assert!(batcher.next_into(&mut batch).unwrap());
        assert_eq!((batch.sequence, batch.bytes), (0, 2));
        assert!(batcher.next_into(&mut batch).unwrap());
        assert_eq!((batch.sequence, batch.bytes), (1, 4));
        assert!(!batcher.next_into(&mut batch).unwrap());
        assert_eq!(batch.bytes, 5);
    }
}
