//! What state costs in memory: per-part usage for `eddy bench`, and the estimates behind it.
//!
//! Heap sizes are computed, not sampled: each allocation is counted as glibc's `malloc`
//! rounds it (a 16-byte-aligned chunk with an 8-byte header, 32 bytes at least) and a hash
//! table as hashbrown lays it out (a power-of-two number of slots, one control byte per slot
//! and a group of 16). The process's resident memory, which `eddy bench` also reports, is
//! the measurement these estimates answer to.

use serde::Serialize;

/// One part of an operator's state: what it holds and what that costs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateUsage {
    /// Which part, e.g. `join left (orders)`.
    pub part: String,
    /// Rows the part holds.
    pub rows: usize,
    /// Heap bytes the part has allocated: buffers, hash table slots and allocator rounding.
    pub allocated_bytes: usize,
    /// Bytes of the values it keeps, as state encodes them (row bytes and join keys), with
    /// no headers, pointers or slack: what an ideal store of these values would hold.
    pub value_bytes: usize,
    /// The same values as Arrow arrays of the kept columns (the columnar size).
    pub column_bytes: usize,
}

/// The heap bytes one allocation of `n` bytes takes (0 for none).
pub fn allocation(n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    ((n + 8 + 15) & !15).max(32)
}

/// The heap bytes of a hashbrown table of this capacity with slots of `slot` bytes.
pub fn hash_table(capacity: usize, slot: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    let slots = if capacity < 8 {
        (capacity + 1).next_power_of_two()
    } else {
        (capacity * 8 / 7).next_power_of_two()
    };
    allocation(slots * slot + slots + 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_round_as_glibc_does() {
        assert_eq!(allocation(0), 0);
        assert_eq!(allocation(1), 32);
        assert_eq!(allocation(24), 32);
        assert_eq!(allocation(25), 48);
        assert_eq!(allocation(1000), 1008);
    }

    #[test]
    fn tables_have_power_of_two_slots() {
        assert_eq!(hash_table(0, 8), 0);
        assert_eq!(hash_table(3, 8), allocation(4 * 9 + 16));
        assert_eq!(hash_table(7 * 1024, 8), allocation(8192 * 9 + 16));
    }
}
