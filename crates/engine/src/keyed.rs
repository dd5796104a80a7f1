//! A table's current rows by primary key, packed into one arena: the engine's biggest state.
//!
//! A map of boxed keys to boxed rows costs two allocations and two fat pointers per row,
//! several times the row's own bytes. Here every row is one entry in a byte arena,
//! `[key length][row length][position][key][row]`, the lengths as LEB128 varints (two bytes
//! for most rows), and a hash table holds only the entries' offsets, in 40 bits (5 bytes a
//! slot; an arena can reach 1 TiB). The position is where in the source's log the row was
//! written (see [`crate::debezium::position`]): 16 bytes, stored only once a row arrives
//! with a known one, so that state no log position applies to (a join's arrangement, a
//! changelog without source blocks) pays nothing for it.
//!
//! A row rewritten at the same length is overwritten in place; otherwise its old entry
//! becomes garbage, and the arena is compacted once garbage passes a quarter of it. The
//! arena grows by a quarter at a time (a large `Vec`'s `realloc` moves pages, not bytes), so
//! that spare capacity stays near the garbage bound too.

use std::hash::BuildHasher;

use hashbrown::HashTable;

use crate::{memory, varint};
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Bytes of a stored position.
const POSITION: usize = 16;

/// Garbage below this many bytes is never worth a compaction.
const MIN_GARBAGE: usize = 64 << 10;

/// What [`KeyedRows::upsert`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Upsert {
    Inserted,
    /// The stored row already had these bytes.
    Unchanged,
    /// The row replaced another, which was appended to the caller's buffer.
    Replaced,
}

/// What [`KeyedRows::write`] did, the old row having been shown to its caller.
enum Written {
    Inserted,
    Unchanged,
    Replaced,
}

/// An entry's offset in the arena, in 40 bits.
#[derive(Debug, Clone, Copy)]
struct Offset([u8; 5]);

impl Offset {
    fn new(offset: usize) -> Self {
        let bytes = (offset as u64).to_le_bytes();
        assert!(bytes[5..].iter().all(|&b| b == 0), "an arena of over 1 TiB");
        Self([bytes[0], bytes[1], bytes[2], bytes[3], bytes[4]])
    }

    fn get(self) -> usize {
        let [a, b, c, d, e] = self.0;
        u64::from_le_bytes([a, b, c, d, e, 0, 0, 0]) as usize
    }
}

/// Where the parts of one entry lie.
#[derive(Clone, Copy)]
struct Parts {
    /// The position's first byte, if positions are stored.
    position: Option<usize>,
    key: usize,
    key_len: usize,
    row_len: usize,
}

impl Parts {
    fn of(arena: &[u8], offset: usize, positioned: bool) -> Self {
        let mut at = offset;
        let key_len = varint::get(arena, &mut at) as usize;
        let row_len = varint::get(arena, &mut at) as usize;
        let position = positioned.then_some(at);
        Self {
            position,
            key: at + if positioned { POSITION } else { 0 },
            key_len,
            row_len,
        }
    }

    fn key(self, arena: &[u8]) -> &[u8] {
        &arena[self.key..self.key + self.key_len]
    }

    fn row_start(self) -> usize {
        self.key + self.key_len
    }

    fn row(self, arena: &[u8]) -> &[u8] {
        &arena[self.row_start()..self.row_start() + self.row_len]
    }

    fn end(self) -> usize {
        self.row_start() + self.row_len
    }

    fn position(self, arena: &[u8]) -> u128 {
        self.position.map_or(0, |at| {
            u128::from_le_bytes(arena[at..at + POSITION].try_into().expect("16 bytes"))
        })
    }
}

#[derive(Default)]
pub struct KeyedRows {
    arena: Vec<u8>,
    offsets: HashTable<Offset>,
    hasher: foldhash::fast::FixedState,
    garbage: usize,
    /// Whether entries hold a position: from the first row written at a known one.
    positioned: bool,
}

impl std::fmt::Debug for KeyedRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedRows")
            .field("rows", &self.len())
            .field("arena_bytes", &self.arena.len())
            .field("garbage", &self.garbage)
            .field("positioned", &self.positioned)
            .finish()
    }
}

/// Appends an entry, growing the arena by a quarter when it is full. Keys and rows come from
/// Kafka messages and state, far below the 1 TiB an offset can address.
fn append(arena: &mut Vec<u8>, positioned: bool, key: &[u8], row: &[u8], position: u128) -> Offset {
    let offset = arena.len();
    let needed = 20 + POSITION + key.len() + row.len();
    if arena.capacity() - arena.len() < needed {
        arena.reserve_exact(needed.max(arena.len() / 4).max(4096));
    }
    varint::put(arena, key.len() as u64);
    varint::put(arena, row.len() as u64);
    if positioned {
        arena.extend_from_slice(&position.to_le_bytes());
    }
    arena.extend_from_slice(key);
    arena.extend_from_slice(row);
    Offset::new(offset)
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
            + memory::hash_table(self.offsets.capacity(), size_of::<Offset>())
    }

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    fn parts(&self, offset: Offset) -> Parts {
        Parts::of(&self.arena, offset.get(), self.positioned)
    }

    /// The row stored under `key`, and its position (0 when unknown).
    pub fn get(&self, key: &[u8]) -> Option<(&[u8], u128)> {
        let arena = &self.arena;
        let positioned = self.positioned;
        let parts = |o: Offset| Parts::of(arena, o.get(), positioned);
        self.offsets
            .find(self.hash(key), |&o| parts(o).key(arena) == key)
            .map(|&o| (parts(o).row(arena), parts(o).position(arena)))
    }

    /// Stores `row` under `key`, written at `position`; the row it replaces is appended to
    /// `replaced` (a buffer the caller reuses, so that an update allocates nothing).
    pub fn upsert(
        &mut self,
        key: &[u8],
        row: &[u8],
        position: u128,
        replaced: &mut Vec<u8>,
    ) -> Upsert {
        match self.write(key, row, position, |old| replaced.extend_from_slice(old)) {
            Written::Inserted => Upsert::Inserted,
            Written::Unchanged => Upsert::Unchanged,
            Written::Replaced => Upsert::Replaced,
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
        if position != 0 && !self.positioned {
            self.rebuild(true);
        }
        let hash = self.hash(key);
        let Self {
            arena,
            offsets,
            hasher,
            garbage,
            positioned,
        } = self;
        let positioned = *positioned;
        let parts = |arena: &[u8], o: Offset| Parts::of(arena, o.get(), positioned);
        let found = offsets.find_mut(hash, |&o| parts(arena, o).key(arena) == key);
        let result = match found {
            None => {
                let offset = append(arena, positioned, key, row, position);
                offsets.insert_unique(hash, offset, |&o| {
                    hasher.hash_one(parts(arena, o).key(arena))
                });
                Written::Inserted
            }
            Some(offset) => {
                let old = parts(arena, *offset);
                if let Some(at) = old.position {
                    arena[at..at + POSITION].copy_from_slice(&position.to_le_bytes());
                }
                if old.row(arena) == row {
                    return Written::Unchanged;
                }
                replaced(old.row(arena));
                if old.row_len == row.len() {
                    let start = old.row_start();
                    arena[start..start + row.len()].copy_from_slice(row);
                } else {
                    *garbage += old.end() - offset.get();
                    *offset = append(arena, positioned, key, row, position);
                }
                Written::Replaced
            }
        };
        self.compact_if_wasteful();
        result
    }

    /// Removes the row stored under `key`, appending it to `removed`; whether there was one.
    pub fn remove(&mut self, key: &[u8], removed: &mut Vec<u8>) -> bool {
        self.take(key, |row| removed.extend_from_slice(row))
    }

    /// Removes the row stored under `key`, if there is one, without copying it out.
    pub fn delete(&mut self, key: &[u8]) {
        self.take(key, |_| ());
    }

    /// Removes the row stored under `key`, showing it to `removed` first.
    fn take(&mut self, key: &[u8], removed: impl FnOnce(&[u8])) -> bool {
        let hash = self.hash(key);
        let arena = &self.arena;
        let positioned = self.positioned;
        let found = self
            .offsets
            .find_entry(hash, |&o| {
                Parts::of(arena, o.get(), positioned).key(arena) == key
            })
            .ok();
        let Some(found) = found else {
            return false;
        };
        let (offset, _) = found.remove();
        let parts = self.parts(offset);
        removed(parts.row(&self.arena));
        self.garbage += parts.end() - offset.get();
        self.compact_if_wasteful();
        true
    }

    /// Removes every row written before `position` (all of them for `u128::MAX`),
    /// returning them.
    pub fn drain_before(&mut self, position: u128) -> Vec<Vec<u8>> {
        let arena = &self.arena;
        let positioned = self.positioned;
        let mut rows = Vec::new();
        let mut freed = 0;
        self.offsets.retain(|&mut o| {
            let parts = Parts::of(arena, o.get(), positioned);
            if parts.position(arena) >= position {
                return true;
            }
            freed += parts.end() - o.get();
            rows.push(parts.row(arena).to_vec());
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
        if self.garbage >= MIN_GARBAGE && self.garbage * 4 >= self.arena.len() {
            self.rebuild(self.positioned);
        }
    }

    /// Rewrites the arena without garbage, with positions if `positioned` (0 for entries
    /// that had none).
    fn rebuild(&mut self, positioned: bool) {
        let live = self.arena.len() - self.garbage;
        let grown = if positioned && !self.positioned {
            self.len() * POSITION
        } else {
            0
        };
        let mut arena = Vec::with_capacity(live + grown + live / 8);
        for offset in self.offsets.iter_mut() {
            let parts = Parts::of(&self.arena, offset.get(), self.positioned);
            let (key, row) = (parts.key(&self.arena), parts.row(&self.arena));
            *offset = append(
                &mut arena,
                positioned,
                key,
                row,
                parts.position(&self.arena),
            );
        }
        self.arena = arena;
        self.garbage = 0;
        self.positioned = positioned;
    }

    /// Every key with its row and position.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8], u128)> {
        self.offsets.iter().map(|&o| {
            let parts = self.parts(o);
            (
                parts.key(&self.arena),
                parts.row(&self.arena),
                parts.position(&self.arena),
            )
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
                // A snapshot holds each key once: nothing is ever replaced into it.
                let mut replaced = Vec::new();
                type Stored = (Vec<u8>, (u64, u64));
                while let Some((key, (row, (high, low)))) = map.next_entry::<Vec<u8>, Stored>()? {
                    let position = (u128::from(high) << 64) | u128::from(low);
                    rows.upsert(&key, &row, position, &mut replaced);
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
    fn positions_cost_nothing_until_one_is_known() {
        let mut rows = KeyedRows::default();
        rows.set(b"key", b"row");
        // Two one-byte lengths, the key, the row.
        assert_eq!(rows.arena.len(), 2 + 3 + 3);
        let mut replaced = Vec::new();
        assert_eq!(
            rows.upsert(b"other", b"r", 5 << 64, &mut replaced),
            Upsert::Inserted
        );
        assert!(replaced.is_empty());
        assert!(rows.positioned);
        assert_eq!(rows.get(b"key"), Some((&b"row"[..], 0)));
        assert_eq!(rows.get(b"other"), Some((&b"r"[..], 5 << 64)));
        assert_eq!(rows.arena.len(), (2 + 16 + 3 + 3) + (2 + 16 + 5 + 1));
    }

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
            // Each call appends to what the calls before left in the buffer.
            let mut out = b"left".to_vec();
            if (seed >> 60) < 4 {
                let removed = model.remove(&key).map(|(row, _)| row);
                assert_eq!(rows.remove(&key, &mut out), removed.is_some());
                assert_eq!(out[4..], removed.unwrap_or_default());
            } else {
                let position = (step << 64) | u128::from(seed >> 63);
                let (expected, old) = match model.insert(key.clone(), (row.clone(), position)) {
                    None => (Upsert::Inserted, vec![]),
                    Some((old, _)) if old == row => (Upsert::Unchanged, vec![]),
                    Some((old, _)) => (Upsert::Replaced, old),
                };
                assert_eq!(rows.upsert(&key, &row, position, &mut out), expected);
                assert_eq!(out[4..], old);
            }
            assert_eq!(out[..4], *b"left");
        }
        assert_eq!(rows.len(), model.len());
        for (key, (row, position)) in &model {
            assert_eq!(rows.get(key), Some((row.as_slice(), *position)));
        }
        assert!(rows.positioned);
        assert!(rows.garbage < MIN_GARBAGE || rows.garbage * 4 < rows.arena.len());
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
