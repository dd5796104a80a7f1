//! A multiset of values by multiplicity, flat while small and hashed beyond: DISTINCT's state.
//!
//! Most groups of a `COUNT(DISTINCT …)` hold a few values; a hash map for each costs its
//! table and a hash per lookup, where scanning a few pairs costs neither. A multiset holds
//! its values in a vector until it passes [`FLAT`] of them, then moves them into a map.

use std::borrow::Borrow;
use std::hash::Hash;

use foldhash::{HashMap, HashMapExt};
use serde::{Deserialize, Serialize};

/// Values a multiset scans before it hashes them.
pub const FLAT: usize = 8;

/// Values with non-zero multiplicities; a value whose multiplicity reaches zero leaves.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Eq + Hash",
    deserialize = "K: Deserialize<'de> + Eq + Hash"
))]
pub enum Multiset<K> {
    Flat(Vec<(K, i64)>),
    Hashed(HashMap<K, i64>),
}

impl<K> Default for Multiset<K> {
    fn default() -> Self {
        Multiset::Flat(Vec::new())
    }
}

impl<K: Eq + Hash> Multiset<K> {
    /// Adds `weight` to `value`'s multiplicity and returns it before and after; `own` makes
    /// the stored value when `value` is new.
    pub fn add<Q>(&mut self, value: &Q, weight: i64, own: impl FnOnce(&Q) -> K) -> (i64, i64)
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        match self {
            Multiset::Flat(values) => match values.iter().position(|(v, _)| v.borrow() == value) {
                Some(i) => {
                    let before = values[i].1;
                    values[i].1 += weight;
                    if values[i].1 == 0 {
                        values.swap_remove(i);
                    }
                    (before, before + weight)
                }
                None if values.len() < FLAT => {
                    values.push((own(value), weight));
                    (0, weight)
                }
                None => {
                    let mut hashed = HashMap::with_capacity(2 * FLAT);
                    hashed.extend(values.drain(..));
                    hashed.insert(own(value), weight);
                    *self = Multiset::Hashed(hashed);
                    (0, weight)
                }
            },
            Multiset::Hashed(values) => match values.get_mut(value) {
                Some(n) => {
                    let before = *n;
                    *n += weight;
                    if *n == 0 {
                        values.remove(value);
                    }
                    (before, before + weight)
                }
                None => {
                    values.insert(own(value), weight);
                    (0, weight)
                }
            },
        }
    }

    /// Values held.
    pub fn len(&self) -> usize {
        match self {
            Multiset::Flat(values) => values.len(),
            Multiset::Hashed(values) => values.len(),
        }
    }

    fn multiplicity(&self, value: &K) -> i64 {
        match self {
            Multiset::Flat(values) => values.iter().find(|(v, _)| v == value).map_or(0, |p| p.1),
            Multiset::Hashed(values) => values.get(value).copied().unwrap_or(0),
        }
    }

    fn iter(&self) -> Box<dyn Iterator<Item = (&K, i64)> + '_> {
        match self {
            Multiset::Flat(values) => Box::new(values.iter().map(|(v, n)| (v, *n))),
            Multiset::Hashed(values) => Box::new(values.iter().map(|(v, n)| (v, *n))),
        }
    }
}

/// Equal when every value has the same multiplicity, flat or hashed.
impl<K: Eq + Hash> PartialEq for Multiset<K> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(v, n)| other.multiplicity(v) == n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiplicities_survive_the_move_from_flat_to_hashed_and_zero_leaves() {
        let mut set = Multiset::<i128>::default();
        for v in 0..FLAT as i128 {
            assert_eq!(set.add(&v, 2, |v| *v), (0, 2));
        }
        assert!(matches!(set, Multiset::Flat(_)));
        assert_eq!(set.add(&100, 1, |v| *v), (0, 1));
        assert!(matches!(set, Multiset::Hashed(_)));
        assert_eq!(set.len(), FLAT + 1);
        assert_eq!(set.add(&3, -2, |v| *v), (2, 0));
        assert_eq!(set.len(), FLAT);
        assert_eq!(
            set.add(&3, -1, |v| *v),
            (0, -1),
            "a retraction first is held"
        );
        assert_eq!(set.add(&3, 1, |v| *v), (-1, 0));
        assert_eq!(set.len(), FLAT);
    }

    #[test]
    fn a_flat_set_drops_a_value_at_zero() {
        let mut set = Multiset::<Box<[u8]>>::default();
        assert_eq!(set.add(&b"a"[..], 1, |v| v.into()), (0, 1));
        assert_eq!(set.add(&b"b"[..], 1, |v| v.into()), (0, 1));
        assert_eq!(set.add(&b"a"[..], -1, |v| v.into()), (1, 0));
        assert_eq!(set, Multiset::Flat(vec![(b"b"[..].into(), 1)]));
    }
}
