//! A table's current rows by primary key, packed into one arena: the engine's biggest state.
//!
//! A map of boxed keys to boxed rows costs two allocations and two fat pointers per row,
//! several times the row's own bytes. Here every row is one entry in a byte arena,
//! `[key length u32][row length u32][position u128][key][row]`, and a hash table holds only
//! the entries' offsets. The position is where in the source's log the row was written
//! (see [`crate::debezium::position`]; 0 when unknown): 16 bytes per key. A row rewritten
//! at the same length is overwritten in place; otherwise its old entry becomes garbage, and
//! the arena is compacted once garbage outweighs live bytes.

use std::hash::BuildHasher;

use hashbrown::HashTable;

use crate::memory;
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const HEADER: usize = 24;
/// Where an entry's position is.
const POSITION: usize = 8;

/// Garbage below this many bytes is never worth a compaction.
const MIN_GARBAGE: usize = 1 << 20;

/// What [`KeyedRows::upsert`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Upsert {
    Inserted,
    /// The stored row already had these bytes.
    Unchanged,
    /// The row replaced this one.
    Replaced(Vec<u8>),
}

/// What [`KeyedRows::write`] did, the old row having been shown to its caller.
enum Written {
    Inserted,
    Unchanged,
    Replaced,
}

#[derive(Default)]
pub struct KeyedRows {
    arena: Vec<u8>,
    offsets: HashTable<usize>,
    hasher: foldhash::fast::FixedState,
    garbage: usize,
}

impl std::fmt::Debug for KeyedRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedRows")
            .field("rows", &self.len())
            .field("arena_bytes", &self.arena.len())
            .field("garbage", &self.garbage)
            .finish()
    }
}

/// The position of the entry at `offset`.
fn position(arena: &[u8], offset: usize) -> u128 {
    let at = offset + POSITION;
    u128::from_le_bytes(arena[at..at + 16].try_into().expect("16 bytes"))
}

/// The key and row of the entry at `offset`.
fn entry(arena: &[u8], offset: usize) -> (&[u8], &[u8]) {
    let len = |at: usize| {
        u32::from_le_bytes([arena[at], arena[at + 1], arena[at + 2], arena[at + 3]]) as usize
    };
    let (key_len, row_len) = (len(offset), len(offset + 4));
    let key = offset + HEADER;
    (
        &arena[key..key + key_len],
        &arena[key + key_len..key + key_len + row_len],
    )
}

impl KeyedRows {
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// The heap bytes held: the arena's buffer (garbage and spare capacity included) and the
    /// offsets' hash table.
    pub fn allocated_bytes(&self) -> usize {
        memory::allocation(self.arena.capacity())
            + memory::hash_table(self.offsets.capacity(), size_of::<usize>())
    }

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The row stored under `key`, and its position.
    pub fn get(&self, key: &[u8]) -> Option<(&[u8], u128)> {
        let arena = &self.arena;
        self.offsets
            .find(self.hash(key), |&o| entry(arena, o).0 == key)
            .map(|&o| (entry(arena, o).1, position(arena, o)))
    }

    /// Appends an entry. Keys and rows come from Kafka messages, far below 4 GiB.
    fn append(arena: &mut Vec<u8>, key: &[u8], row: &[u8], position: u128) -> usize {
        let offset = arena.len();
        let key_len = u32::try_from(key.len()).expect("a key of over 4 GiB");
        let row_len = u32::try_from(row.len()).expect("a row of over 4 GiB");
        arena.extend_from_slice(&key_len.to_le_bytes());
        arena.extend_from_slice(&row_len.to_le_bytes());
        arena.extend_from_slice(&position.to_le_bytes());
        arena.extend_from_slice(key);
        arena.extend_from_slice(row);
        offset
    }

    /// Stores `row` under `key`, written at `position`.
    pub fn upsert(&mut self, key: &[u8], row: &[u8], position: u128) -> Upsert {
        let mut replaced = None;
        match self.write(key, row, position, |old| replaced = Some(old.to_vec())) {
            Written::Inserted => Upsert::Inserted,
            Written::Unchanged => Upsert::Unchanged,
            Written::Replaced => Upsert::Replaced(replaced.expect("write saw the old row")),
        }
    }

    /// Stores `row` under `key` at no known position, without copying out what it replaces.
    pub fn set(&mut self, key: &[u8], row: &[u8]) {
        self.write(key, row, 0, |_| ());
    }

    /// Stores `row` under `key` at `position`; `replaced` sees the old row before it is
    /// overwritten.
    fn write(
        &mut self,
        key: &[u8],
        row: &[u8],
        position: u128,
        replaced: impl FnOnce(&[u8]),
    ) -> Written {
        let hash = self.hash(key);
        let Self {
            arena,
            offsets,
            hasher,
            garbage,
        } = self;
        let found = offsets.find_mut(hash, |&o| entry(arena, o).0 == key);
        let result = match found {
            None => {
                let offset = Self::append(arena, key, row, position);
                offsets.insert_unique(hash, offset, |&o| hasher.hash_one(entry(arena, o).0));
                Written::Inserted
            }
            Some(offset) => {
                let at = *offset + POSITION;
                arena[at..at + 16].copy_from_slice(&position.to_le_bytes());
                let (_, old) = entry(arena, *offset);
                if old == row {
                    return Written::Unchanged;
                }
                let old_len = old.len();
                replaced(old);
                if old_len == row.len() {
                    let start = *offset + HEADER + key.len();
                    arena[start..start + row.len()].copy_from_slice(row);
                } else {
                    *garbage += HEADER + key.len() + old_len;
                    *offset = Self::append(arena, key, row, position);
                }
                Written::Replaced
            }
        };
        self.compact_if_wasteful();
        result
    }

    /// Removes the row stored under `key` and returns it.
    pub fn remove(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        let hash = self.hash(key);
        let arena = &self.arena;
        let found = self
            .offsets
            .find_entry(hash, |&o| entry(arena, o).0 == key)
            .ok()?;
        let (offset, _) = found.remove();
        let (key, row) = entry(&self.arena, offset);
        let row = row.to_vec();
        self.garbage += HEADER + key.len() + row.len();
        self.compact_if_wasteful();
        Some(row)
    }

    /// Removes every row written before `position` (all of them for `u128::MAX`),
    /// returning them.
    pub fn drain_before(&mut self, position: u128) -> Vec<Vec<u8>> {
        let arena = &self.arena;
        let mut rows = Vec::new();
        let mut freed = 0;
        self.offsets.retain(|&mut o| {
            if self::position(arena, o) >= position {
                return true;
            }
            let (key, row) = entry(arena, o);
            freed += HEADER + key.len() + row.len();
            rows.push(row.to_vec());
            false
        });
        if self.is_empty() {
            self.arena = Vec::new();
            self.garbage = 0;
        } else {
            self.garbage += freed;
            self.compact_if_wasteful();
        }
        rows
    }

    fn compact_if_wasteful(&mut self) {
        if self.garbage < MIN_GARBAGE || self.garbage * 2 < self.arena.len() {
            return;
        }
        let mut arena = Vec::with_capacity(self.arena.len() - self.garbage);
        for offset in self.offsets.iter_mut() {
            let (key, row) = entry(&self.arena, *offset);
            *offset = Self::append(&mut arena, key, row, position(&self.arena, *offset));
        }
        self.arena = arena;
        self.garbage = 0;
    }

    /// Every key with its row and position.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8], u128)> {
        self.offsets.iter().map(|&o| {
            let (key, row) = entry(&self.arena, o);
            (key, row, position(&self.arena, o))
        })
    }
}

/// Serialized as a map of key bytes to row bytes and position, the position as two `u64`s
/// (varints: a PostgreSQL LSN's high half is small, its low half 0 or 1).
impl Serialize for KeyedRows {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (key, row, position) in self.iter() {
            map.serialize_entry(key, &(row, split(position)))?;
        }
        map.end()
    }
}

fn split(position: u128) -> (u64, u64) {
    ((position >> 64) as u64, position as u64)
}

impl<'de> Deserialize<'de> for KeyedRows {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Rows;
        impl<'de> Visitor<'de> for Rows {
            type Value = KeyedRows;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of key bytes to row bytes and position")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<KeyedRows, M::Error> {
                let mut rows = KeyedRows::default();
                type Stored = (Vec<u8>, (u64, u64));
                while let Some((key, (row, (high, low)))) = map.next_entry::<Vec<u8>, Stored>()? {
                    rows.upsert(&key, &row, (u128::from(high) << 64) | u128::from(low));
                }
                Ok(rows)
            }
        }
        deserializer.deserialize_map(Rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn behaves_like_a_map_through_compactions() {
        let mut rows = KeyedRows::default();
        let mut model: HashMap<Vec<u8>, (Vec<u8>, u128)> = HashMap::new();
        let mut seed = 7u64;
        for step in 0..200_000u128 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let key = ((seed >> 33) % 5000).to_le_bytes().to_vec();
            let row = vec![(seed >> 20) as u8; 1 + (seed >> 40) as usize % 40];
            if (seed >> 60) < 4 {
                let removed = model.remove(&key).map(|(row, _)| row);
                assert_eq!(rows.remove(&key), removed);
            } else {
                let position = (step << 64) | u128::from(seed >> 63);
                let expected = match model.insert(key.clone(), (row.clone(), position)) {
                    None => Upsert::Inserted,
                    Some((old, _)) if old == row => Upsert::Unchanged,
                    Some((old, _)) => Upsert::Replaced(old),
                };
                assert_eq!(rows.upsert(&key, &row, position), expected);
            }
        }
        assert_eq!(rows.len(), model.len());
        for (key, (row, position)) in &model {
            assert_eq!(rows.get(key), Some((row.as_slice(), *position)));
        }
        assert!(rows.arena.len() < 2 * (rows.arena.len() - rows.garbage) + MIN_GARBAGE);
        let bytes = postcard::to_allocvec(&rows).unwrap();
        let restored: KeyedRows = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(restored.len(), model.len());
        for (key, (row, position)) in &model {
            assert_eq!(restored.get(key), Some((row.as_slice(), *position)));
        }
        let half = 100_000u128 << 64;
        let mut old = rows.drain_before(half);
        old.sort();
        let mut expected: Vec<_> = model
            .values()
            .filter(|(_, p)| *p < half)
            .map(|(row, _)| row.clone())
            .collect();
        expected.sort();
        assert_eq!(old, expected);
        assert_eq!(
            rows.len(),
            model.values().filter(|(_, p)| *p >= half).count()
        );
        rows.drain_before(u128::MAX);
        assert!(rows.is_empty());
    }
}
