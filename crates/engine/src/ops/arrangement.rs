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
//! key, which is most of what a per-key buffer would cost, and no source position (rows
//! here have none). An edit rewrites the small bucket;
//! a bucket that outgrows the limit moves to its own buffer, where a new row is appended
//! rather than copying a hot key's whole bucket.
//!
//! `matches` is the weighted number of rows of the other input a row joins with; only sides
//! whose output depends on it (outer, semi, anti, mark) keep it.

use foldhash::HashMap;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::keyed::KeyedRows;
use crate::{memory, varint};

/// Buckets above this many bytes get their own buffer.
const LARGE_BUCKET: usize = 1024;

/// What [`Arrangement::edit`] does to a bucket.
enum Edit<'a> {
    /// [`Arrangement::add_all`]'s changes.
    Add(&'a [(&'a [u8], i64, i64)]),
    /// Adds to a stored row's match count.
    Matches(&'a [u8], i64),
}

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

/// Appends one entry to a bucket.
fn put_entry(bucket: &mut Vec<u8>, counted: bool, entry: Entry<'_>) {
    varint::put(bucket, entry.row.len() as u64);
    varint::put(bucket, varint::zigzag(entry.weight));
    if counted {
        varint::put(bucket, varint::zigzag(entry.matches));
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
        let len = varint::get(bucket, &mut at) as usize;
        let weight = varint::unzigzag(varint::get(bucket, &mut at));
        let matches = if counted {
            varint::unzigzag(varint::get(bucket, &mut at))
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

    /// Adds each `(row, weight, matches)` of one join key, in order: `weight` to the row's
    /// weight, storing it with `matches` if it is new; a row whose weight reaches zero is
    /// removed. The key's bucket is rewritten once: an update that keeps its join key (a retraction and
    /// an insertion under one key) then rewrites a small bucket in place, where two edits
    /// would leave a garbage copy of it in the arena.
    pub fn add_all(&mut self, key: &[u8], changes: &[(&[u8], i64, i64)]) {
        let counted = self.counted;
        for (i, &(row, weight, matches)) in changes.iter().enumerate() {
            match self.large.get_mut(key) {
                Some(bucket) if !entries(bucket, counted).any(|e| e.row == row) => {
                    // A new row of a hot key: appended, not copied with its bucket.
                    if weight != 0 {
                        let entry = Entry {
                            row,
                            weight,
                            matches,
                        };
                        put_entry(bucket, counted, entry);
                    }
                }
                Some(_) => self.edit(key, Edit::Add(&changes[i..=i])),
                None => return self.edit(key, Edit::Add(&changes[i..])),
            }
        }
    }

    /// Adds `delta` to the match count of a stored row.
    pub fn add_matches(&mut self, key: &[u8], row: &[u8], delta: i64) {
        if self.counted && self.get(key, row).is_some() {
            self.edit(key, Edit::Matches(row, delta));
        }
    }

    /// Rebuilds `key`'s bucket with `edit` applied; an entry of weight 0 is left out, an
    /// empty bucket removed.
    fn edit(&mut self, key: &[u8], edit: Edit<'_>) {
        let counted = self.counted;
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let mut rows: SmallVec<[Entry<'_>; 4]> = self
            .bucket_bytes(key)
            .into_iter()
            .flat_map(|b| entries(b, counted))
            .collect();
        match edit {
            Edit::Add(changes) => {
                for &(row, weight, matches) in changes {
                    match rows.iter().position(|e| e.row == row) {
                        Some(i) => {
                            rows[i].weight += weight;
                            if rows[i].weight == 0 {
                                rows.remove(i);
                            }
                        }
                        None if weight != 0 => rows.push(Entry {
                            row,
                            weight,
                            matches,
                        }),
                        None => {}
                    }
                }
            }
            Edit::Matches(row, delta) => {
                if let Some(e) = rows.iter_mut().find(|e| e.row == row) {
                    e.matches += delta;
                }
            }
        }
        for e in rows {
            put_entry(&mut scratch, counted, e);
        }
        if let Some(bucket) = self.large.get_mut(key) {
            if scratch.is_empty() {
                self.large.remove(key);
            } else {
                std::mem::swap(bucket, &mut scratch);
            }
        } else if scratch.is_empty() {
            self.small.delete(key);
        } else if scratch.len() > LARGE_BUCKET {
            self.small.delete(key);
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
        a.add_all(b"k", &[(&b"r1"[..], 1, 3)]);
        a.add_all(b"k", &[(&b"row2"[..], 2, 0)]);
        a.add_all(b"j", &[(&b"r1"[..], 1, 0)]);
        a.add_matches(b"k", b"r1", -1);
        assert_eq!(a.get(b"k", b"r1"), Some((1, 2)));
        a.add_all(b"k", &[(&b"row2"[..], -1, 9)]);
        assert_eq!(a.get(b"k", b"row2"), Some((1, 0)));
        a.add_all(b"k", &[(&b"r1"[..], -1, 0)]);
        assert_eq!(a.get(b"k", b"r1"), None);
        assert_eq!(a.bucket(b"k").count(), 1);
        a.add_all(b"k", &[(&b"row2"[..], -1, 0)]);
        assert_eq!(a.bucket(b"k").count(), 0);
        assert_eq!(a.iter().count(), 1);
        let bytes = postcard::to_allocvec(&a).unwrap();
        let restored: Arrangement = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(restored.get(b"j", b"r1"), Some((1, 0)));
    }

    #[test]
    fn one_edit_of_many_rows_equals_one_edit_per_row() {
        let (mut batched, mut single) = (Arrangement::new(true), Arrangement::new(true));
        let mut seed = 11u64;
        for _ in 0..2000 {
            let mut changes = Vec::new();
            for _ in 0..1 + seed % 4 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let row = vec![(seed >> 40) as u8 % 6; 1 + (seed >> 50) as usize % 3];
                let weight = (seed >> 33) as i64 % 3 - 1;
                changes.push((row, weight, (seed >> 20) as i64 % 5));
            }
            let key = [(seed >> 45) as u8 % 3];
            let borrowed: Vec<(&[u8], i64, i64)> = changes
                .iter()
                .map(|(r, w, m)| (r.as_slice(), *w, *m))
                .collect();
            batched.add_all(&key, &borrowed);
            for change in &borrowed {
                single.add_all(&key, std::slice::from_ref(change));
            }
        }
        let sorted = |a: &Arrangement| {
            let mut rows: Vec<_> = a
                .iter()
                .map(|(k, e)| (k.to_vec(), e.row.to_vec(), e.weight, e.matches))
                .collect();
            rows.sort();
            rows
        };
        assert_eq!(sorted(&batched), sorted(&single));
        assert!(!sorted(&batched).is_empty());
    }

    #[test]
    fn uncounted_sides_keep_no_match_counts() {
        let mut a = Arrangement::new(false);
        a.add_all(b"k", &[(&b"r"[..], 1, 5)]);
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
            a.add_all(b"hot", &[(&row[..], 1, i as i64)]);
            a.add_all(b"cold", &[(&row[..], -2, 0)]);
        }
        assert!(a.large.contains_key(b"hot".as_slice()));
        assert_eq!(a.bucket(b"hot").count(), 500);
        a.add_matches(b"hot", &rows[7], 100);
        assert_eq!(a.get(b"hot", &rows[7]), Some((1, 107)));
        assert_eq!(a.get(b"cold", &rows[499]), Some((-2, 0)));
        for row in &rows {
            a.add_all(b"hot", &[(&row[..], -1, 0)]);
        }
        assert_eq!(a.bucket(b"hot").count(), 0);
        assert!(!a.large.contains_key(b"hot".as_slice()));
        assert_eq!(a.iter().count(), 500);
        let (rows_kept, _, values) = a.usage();
        assert_eq!((rows_kept, values), (500, 500 * (4 + 4)));
    }
}
