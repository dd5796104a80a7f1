//! An arrangement: one join input's rows indexed by join key, with Z-set weights and match
//! counts.
//!
//! Rows are kept as row bytes ([`RowCodec`](crate::rows::RowCodec)), packed per join key into
//! one buffer of entries `[row length u32][weight i64][matches i64][row]`: one allocation per
//! distinct join key rather than per row, and no per-value boxing. A probe reads a key's
//! buffer front to back, which is what a join does with it anyway. `matches` is the weighted
//! number of rows of the other input this row joins with; only sides whose output depends on
//! it (outer, semi, anti, mark) keep it up to date.

use foldhash::HashMap;
use serde::{Deserialize, Serialize};

const HEADER: usize = 20;

/// One stored row.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub row: &'a [u8],
    pub weight: i64,
    pub matches: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Arrangement {
    buckets: HashMap<Box<[u8]>, Vec<u8>>,
}

fn read_u32(bytes: &[u8], at: usize) -> usize {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize
}

fn read_i64(bytes: &[u8], at: usize) -> i64 {
    i64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

fn write_i64(bytes: &mut [u8], at: usize, value: i64) {
    bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

/// The entries of one bucket, with their offsets.
fn entries(bucket: &[u8]) -> impl Iterator<Item = (usize, Entry<'_>)> {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= bucket.len() {
            return None;
        }
        let len = read_u32(bucket, at);
        let entry = Entry {
            weight: read_i64(bucket, at + 4),
            matches: read_i64(bucket, at + 12),
            row: &bucket[at + HEADER..at + HEADER + len],
        };
        let offset = at;
        at += HEADER + len;
        Some((offset, entry))
    })
}

impl Arrangement {
    /// The rows stored under a join key.
    pub fn bucket(&self, key: &[u8]) -> impl Iterator<Item = Entry<'_>> {
        self.buckets
            .get(key)
            .into_iter()
            .flat_map(|b| entries(b).map(|(_, e)| e))
    }

    /// Every stored row with its join key.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], Entry<'_>)> {
        self.buckets
            .iter()
            .flat_map(|(k, b)| entries(b).map(move |(_, e)| (k.as_ref(), e)))
    }

    /// The weight and match count of a row, if stored.
    pub fn get(&self, key: &[u8], row: &[u8]) -> Option<(i64, i64)> {
        self.bucket(key)
            .find(|e| e.row == row)
            .map(|e| (e.weight, e.matches))
    }

    /// Adds `weight` to a row's weight, storing it with `matches` if it is new; a row whose
    /// weight reaches zero is removed.
    pub fn add(&mut self, key: &[u8], row: &[u8], weight: i64, matches: i64) {
        if !self.buckets.contains_key(key) {
            self.buckets.insert(key.into(), Vec::new());
        }
        let bucket = self.buckets.get_mut(key).expect("inserted above");
        let found = entries(bucket)
            .find(|(_, e)| e.row == row)
            .map(|(at, e)| (at, e.weight));
        match found {
            Some((at, stored)) if stored + weight == 0 => {
                bucket.drain(at..at + HEADER + row.len());
                if bucket.is_empty() {
                    self.buckets.remove(key);
                }
            }
            Some((at, stored)) => write_i64(bucket, at + 4, stored + weight),
            None => {
                let len = u32::try_from(row.len()).expect("a row of over 4 GiB");
                bucket.extend_from_slice(&len.to_le_bytes());
                bucket.extend_from_slice(&weight.to_le_bytes());
                bucket.extend_from_slice(&matches.to_le_bytes());
                bucket.extend_from_slice(row);
            }
        }
    }

    /// Adds `delta` to the match count of a stored row.
    pub fn add_matches(&mut self, key: &[u8], row: &[u8], delta: i64) {
        let Some(bucket) = self.buckets.get_mut(key) else {
            return;
        };
        let found = entries(bucket)
            .find(|(_, e)| e.row == row)
            .map(|(at, e)| (at, e.matches));
        if let Some((at, matches)) = found {
            write_i64(bucket, at + 12, matches + delta);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_and_matches_per_row() {
        let mut a = Arrangement::default();
        a.add(b"k", b"r1", 1, 3);
        a.add(b"k", b"row2", 2, 0);
        a.add(b"j", b"r1", 1, 0);
        a.add_matches(b"k", b"r1", -1);
        assert_eq!(a.get(b"k", b"r1"), Some((1, 2)));
        a.add(b"k", b"row2", -1, 9);
        assert_eq!(a.get(b"k", b"row2"), Some((1, 0)));
        a.add(b"k", b"r1", -1, 0);
        assert_eq!(a.get(b"k", b"r1"), None);
        assert_eq!(a.bucket(b"k").count(), 1);
        a.add(b"k", b"row2", -1, 0);
        assert_eq!(a.bucket(b"k").count(), 0);
        assert_eq!(a.iter().count(), 1);
        let bytes = postcard::to_allocvec(&a).unwrap();
        let restored: Arrangement = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(restored.get(b"j", b"r1"), Some((1, 0)));
    }
}
