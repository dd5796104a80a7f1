//! The `customers` table: one row per user id, inserted early, then moving country,
//! leaving and coming back.
//!
//! Customers have their own random stream, so turning them on leaves the orders' rows as
//! they were. While some user id has never been a customer, half the events are customer
//! inserts, in id order (so most orders soon find their customer); after that one event in
//! ten is a customer's: an id drawn at random is inserted again if it was deleted, else
//! moves country (85%) or is deleted (15%), which keeps about 87% of the customers alive.

use std::fmt::Write;

use crate::orders::skewed_country;
use crate::{COUNTRIES, DecimalMode, Image, Op, SplitMix64};

/// Percent of the events that are customers' while some were never inserted, and after.
const RAMP_SHARE: u64 = 50;
const STEADY_SHARE: u64 = 10;
/// Percent of the changes to a live customer that delete it.
const DELETE_SHARE: u64 = 15;

const FIRST_NAMES: [&str; 16] = [
    "Ada", "Alan", "Barbara", "Claude", "Donald", "Edsger", "Frances", "Grace", "John", "Ken",
    "Leslie", "Margaret", "Niklaus", "Radia", "Sophie", "Tony",
];
const LAST_NAMES: [&str; 16] = [
    "Allen", "Backus", "Dijkstra", "Hamilton", "Hopper", "Kay", "Knuth", "Lamport", "Liskov",
    "Lovelace", "McCarthy", "Perlman", "Ritchie", "Shannon", "Turing", "Wirth",
];

#[derive(Debug, Clone, Copy)]
pub struct Customer {
    id: u32,
    /// A first name's index in the high nibble, a last name's in the low one.
    name: u8,
    country: u8,
}

pub struct Customers {
    rng: SplitMix64,
    /// By id - 1: the live customer, or `None`.
    rows: Vec<Option<Customer>>,
    live: usize,
    /// Ids from here on were never inserted.
    never_inserted: usize,
}

impl Customers {
    pub fn new(seed: u64, users: u32) -> Self {
        Self {
            // "customer" in ASCII: a stream unrelated to the orders'.
            rng: SplitMix64::new(seed ^ 0x6375_7374_6f6d_6572),
            rows: vec![None; users as usize],
            live: 0,
            never_inserted: 0,
        }
    }

    pub fn live_rows(&self) -> usize {
        self.live
    }

    /// The next customer change (its operation and images), if the next event is a
    /// customer's.
    pub fn next(&mut self) -> Option<(Op, Option<Customer>, Option<Customer>)> {
        let ramp = self.never_inserted < self.rows.len();
        let share = if ramp { RAMP_SHARE } else { STEADY_SHARE };
        (self.rng.below(100) < share).then(|| self.change())
    }

    fn change(&mut self) -> (Op, Option<Customer>, Option<Customer>) {
        let index = if self.never_inserted < self.rows.len() {
            self.never_inserted += 1;
            self.never_inserted - 1
        } else {
            self.rng.below(self.rows.len() as u64) as usize
        };
        match self.rows[index] {
            None => {
                let customer = Customer {
                    id: index as u32 + 1,
                    name: self.rng.below(256) as u8,
                    country: skewed_country(&mut self.rng),
                };
                self.rows[index] = Some(customer);
                self.live += 1;
                (Op::Insert, None, Some(customer))
            }
            Some(old) if self.rng.below(100) < DELETE_SHARE => {
                self.rows[index] = None;
                self.live -= 1;
                (Op::Delete, Some(old), None)
            }
            Some(old) => {
                let mut country = skewed_country(&mut self.rng);
                if country == old.country {
                    let others = COUNTRIES.len() as u64 - 1;
                    country = ((old.country as u64 + 1 + self.rng.below(others))
                        % COUNTRIES.len() as u64) as u8;
                }
                let new = Customer { country, ..old };
                self.rows[index] = Some(new);
                (Op::Update, Some(old), Some(new))
            }
        }
    }
}

impl Image for Customer {
    fn id(&self) -> u32 {
        self.id
    }

    fn write(&self, out: &mut String, _: DecimalMode) {
        let _ = write!(
            out,
            r#"{{"id":{},"name":"{} {}","country":"{}"}}"#,
            self.id,
            FIRST_NAMES[(self.name >> 4) as usize],
            LAST_NAMES[(self.name & 15) as usize],
            COUNTRIES[self.country as usize]
        );
    }

    fn write_key_only(&self, out: &mut String) {
        let _ = write!(out, r#"{{"id":{},"name":null,"country":null}}"#, self.id);
    }
}

/// The Connect schema fields of a row (`json::value_schema`'s `fields`).
pub const SCHEMA_FIELDS: &str = r#"{"type":"int32","optional":false,"field":"id"},{"type":"string","optional":false,"field":"name"},{"type":"string","optional":false,"field":"country"}"#;
