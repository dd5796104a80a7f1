//! An arrangement: one join input's rows indexed by join key, with Z-set weights and match
//! counts.
//!
//! Rows are kept as row bytes ([`RowCodec`](crate::rows::RowCodec)), packed per join key into
//! one bucket of entries `[row length][weight][matches][row]`, the three numbers as LEB128
//! varints (zigzag for the signed two; a keyed row's weight is 1, one byte), and `matches`
//! only on a counted side. A probe reads a key's bucket front to back, which is what a join
//! does with it anyway.
//!
//! Buckets of up to [`LARGE_BUCKET`] bytes (a primary key's one row, a foreign key's few)
//! live together in one arena ([`KeyedRows`]): no allocation, pointer or spare capacity per
//! key, which is most of what a per-key buffer would cost (the arena's entry header, shared
//! with the normalizer, does carry a 16-byte source position, unused here). An edit rewrites the small bucket;
//! a bucket that outgrows the limit moves to its own buffer, where a new row is appended
//! rather than copying a hot key's whole bucket.
//!
//! `matches` is the weighted number of rows of the other input a row joins with; only sides
//! whose output depends on it (outer, semi, anti, mark) keep it.

use foldhash::HashMap;
use serde::{Deserialize, Serialize};

use crate::keyed::KeyedRows;
use crate::memory;

/// Buckets above this many bytes get their own buffer.
const LARGE_BUCKET: usize = 1024;

/// One stored row.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub row: &'a [u8],
    pub weight: i64,
    pub matches: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Arrangement {
    /// Whether entries hold a match count.
    counted: bool,
    small: KeyedRows,
    large: HashMap<Box<[u8]>, Vec<u8>>,
    /// The bucket being rebuilt by an edit, kept to reuse its allocation.
    #[serde(skip)]
    scratch: Vec<u8>,
}

// LEB128 by hand: two loops, where a crate would be a dependency for a dozen lines.
fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn get_varint(bytes: &[u8], at: &mut usize) -> u64 {
    let mut value = 0u64;
    let mut shift = 0;
    loop {
        let byte = bytes[*at];
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return value;
        }
        shift += 7;
    }
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn unzigzag(value: u64) -> i64 {
    (value >> 1) as i64 ^ -((value & 1) as i64)
}

/// Appends one entry to a bucket.
fn put_entry(bucket: &mut Vec<u8>, counted: bool, entry: Entry<'_>) {
    put_varint(bucket, entry.row.len() as u64);
    put_varint(bucket, zigzag(entry.weight));
    if counted {
        put_varint(bucket, zigzag(entry.matches));
    }
    bucket.extend_from_slice(entry.row);
}

/// The entries of one bucket.
fn entries(bucket: &[u8], counted: bool) -> impl Iterator<Item = Entry<'_>> {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= bucket.len() {
            return None;
        }
        let len = get_varint(bucket, &mut at) as usize;
        let weight = unzigzag(get_varint(bucket, &mut at));
        let matches = if counted {
            unzigzag(get_varint(bucket, &mut at))
        } else {
            0
        };
        let row = &bucket[at..at + len];
        at += len;
        Some(Entry {
            row,
            weight,
            matches,
        })
    })
}

impl Arrangement {
    /// An empty arrangement; `counted` sides keep each row's match count.
    pub fn new(counted: bool) -> Self {
        Self {
            counted,
            ..Self::default()
        }
    }

    fn bucket_bytes(&self, key: &[u8]) -> Option<&[u8]> {
        match self.large.get(key) {
            Some(bucket) => Some(bucket),
            None => self.small.get(key).map(|(bucket, _)| bucket),
        }
    }

    /// The rows stored under a join key.
    pub fn bucket(&self, key: &[u8]) -> impl Iterator<Item = Entry<'_>> {
        let counted = self.counted;
        self.bucket_bytes(key)
            .into_iter()
            .flat_map(move |b| entries(b, counted))
    }

    /// Every stored row with its join key.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], Entry<'_>)> {
        let counted = self.counted;
        self.small
            .iter()
            .map(|(k, b, _)| (k, b))
            .chain(self.large.iter().map(|(k, b)| (k.as_ref(), b.as_slice())))
            .flat_map(move |(k, b)| entries(b, counted).map(move |e| (k, e)))
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
        if let Some(bucket) = self.large.get_mut(key)
            && !entries(bucket, self.counted).any(|e| e.row == row)
        {
            // A new row of a hot key: appended, not copied with its bucket.
            let entry = Entry {
                row,
                weight,
                matches,
            };
            put_entry(bucket, self.counted, entry);
            return;
        }
        self.edit(key, row, |stored| match stored {
            Some((w, m)) => (w + weight, m),
            None => (weight, matches),
        });
    }

    /// Adds `delta` to the match count of a stored row.
    pub fn add_matches(&mut self, key: &[u8], row: &[u8], delta: i64) {
        if !self.counted || self.get(key, row).is_none() {
            return;
        }
        self.edit(key, row, |stored| {
            let (weight, matches) = stored.expect("checked above");
            (weight, matches + delta)
        });
    }

    /// Rebuilds `key`'s bucket with `row`'s weight and match count replaced by what `change`
    /// makes of the stored ones (if any); an entry of weight 0 is left out, an empty bucket
    /// removed.
    fn edit(
        &mut self,
        key: &[u8],
        row: &[u8],
        change: impl FnOnce(Option<(i64, i64)>) -> (i64, i64),
    ) {
        let counted = self.counted;
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let mut found = None;
        if let Some(bucket) = self.bucket_bytes(key) {
            for e in entries(bucket, counted) {
                if e.row == row {
                    found = Some((e.weight, e.matches));
                } else {
                    put_entry(&mut scratch, counted, e);
                }
            }
        }
        let (weight, matches) = change(found);
        if weight != 0 {
            let entry = Entry {
                row,
                weight,
                matches,
            };
            put_entry(&mut scratch, counted, entry);
        }
        if let Some(bucket) = self.large.get_mut(key) {
            if scratch.is_empty() {
                self.large.remove(key);
            } else {
                std::mem::swap(bucket, &mut scratch);
            }
        } else if scratch.is_empty() {
            self.small.remove(key);
        } else if scratch.len() > LARGE_BUCKET {
            self.small.remove(key);
            self.large.insert(key.into(), scratch.clone());
        } else {
            self.small.set(key, &scratch);
        }
        self.scratch = scratch;
    }

    /// Rows stored, heap bytes allocated, and the bytes of the join keys and rows themselves.
    pub fn usage(&self) -> (usize, usize, usize) {
        let (mut rows, mut values) = (0, 0);
        let buckets = self
            .small
            .iter()
            .map(|(k, b, _)| (k, b))
            .chain(self.large.iter().map(|(k, b)| (k.as_ref(), b.as_slice())));
        for (key, bucket) in buckets {
            for e in entries(bucket, self.counted) {
                rows += 1;
                values += key.len() + e.row.len();
            }
        }
        let slot = size_of::<(Box<[u8]>, Vec<u8>)>();
        let large: usize = self
            .large
            .iter()
            .map(|(k, b)| memory::allocation(k.len()) + memory::allocation(b.capacity()))
            .sum();
        let allocated = self.small.allocated_bytes()
            + memory::hash_table(self.large.capacity(), slot)
            + large
            + memory::allocation(self.scratch.capacity());
        (rows, allocated, values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_and_matches_per_row() {
        let mut a = Arrangement::new(true);
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

    #[test]
    fn uncounted_sides_keep_no_match_counts() {
        let mut a = Arrangement::new(false);
        a.add(b"k", b"r", 1, 5);
        a.add_matches(b"k", b"r", 2);
        assert_eq!(a.get(b"k", b"r"), Some((1, 0)));
        // Key, row length, weight, row: no bytes for a match count.
        assert_eq!(a.usage().2, 2);
    }

    #[test]
    fn a_hot_key_moves_to_its_own_buffer() {
        let mut a = Arrangement::new(true);
        let rows: Vec<Vec<u8>> = (0..500u32).map(|i| i.to_le_bytes().to_vec()).collect();
        for (i, row) in rows.iter().enumerate() {
            a.add(b"hot", row, 1, i as i64);
            a.add(b"cold", row, -2, 0);
        }
        assert!(a.large.contains_key(b"hot".as_slice()));
        assert_eq!(a.bucket(b"hot").count(), 500);
        a.add_matches(b"hot", &rows[7], 100);
        assert_eq!(a.get(b"hot", &rows[7]), Some((1, 107)));
        assert_eq!(a.get(b"cold", &rows[499]), Some((-2, 0)));
        for row in &rows {
            a.add(b"hot", row, -1, 0);
        }
        assert_eq!(a.bucket(b"hot").count(), 0);
        assert!(!a.large.contains_key(b"hot".as_slice()));
        assert_eq!(a.iter().count(), 500);
        let (rows_kept, _, values) = a.usage();
        assert_eq!((rows_kept, values), (500, 500 * (4 + 4)));
    }
}
