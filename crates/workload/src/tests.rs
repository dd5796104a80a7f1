//! The generator's guarantees: determinism, the mix asked for, valid Debezium JSON, and
//! customers that change like a table without disturbing the orders.

use std::collections::BTreeMap;

use serde_json::Value;

use super::*;

fn take(options: Options, n: usize) -> Vec<(String, String, Change)> {
    let mut generator = Generator::new(options);
    (0..n)
        .map(|_| {
            let (mut key, mut value) = (String::new(), String::new());
            let change = generator.next_into(&mut key, &mut value);
            (key, value, change)
        })
        .collect()
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// FNV-1a over `n` events' keys, values and operations.
fn fingerprint(options: Options, n: usize) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (key, value, change) in take(options, n) {
        for byte in key.bytes().chain(value.bytes()).chain([change.op as u8]) {
            hash = (hash ^ byte as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

#[test]
fn orders_alone_give_the_bytes_they_always_gave() {
    // Benchmark figures are comparable across versions only if their input is: these are
    // the fingerprints of the changelogs before customers existed.
    assert_eq!(
        fingerprint(Options::default(), 20_000),
        0xf80d_0dfe_c1ec_d4e4
    );
    let schemas = Options {
        schemas: true,
        decimal: DecimalMode::String,
        ..Options::default()
    };
    assert_eq!(fingerprint(schemas, 20_000), 0xe1d1_9f99_a7b4_fd5f);
    let default_identity = Options {
        identity: ReplicaIdentity::Default,
        live_keys: 300,
        seed: 9,
        ..Options::default()
    };
    assert_eq!(fingerprint(default_identity, 20_000), 0x9fe1_db5c_9f78_c4aa);
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    for customers in [false, true] {
        let options = Options {
            customers,
            ..Options::default()
        };
        let a = take(options.clone(), 1000);
        assert_eq!(a, take(options.clone(), 1000));
        let other = Options { seed: 2, ..options };
        assert_ne!(a, take(other, 1000));
    }
}

#[test]
fn mix_and_live_keys_are_honoured() {
    let options = Options {
        live_keys: 300,
        ..Options::default()
    };
    let mut generator = Generator::new(options);
    let (mut key, mut value) = (String::new(), String::new());
    let mut counts = [0usize; 3];
    for _ in 0..10_000 {
        counts[generator.next_into(&mut key, &mut value).op as usize] += 1;
        assert!(generator.live_rows(Table::Orders) <= 300);
    }
    assert!(counts[Op::Delete as usize] > 800, "{counts:?}");
    let balanced = take(Options::default(), 10_000);
    assert!(balanced.iter().all(|e| e.2.table == Table::Orders));
    let inserts = balanced.iter().filter(|e| e.2.op == Op::Insert).count();
    assert!((5_700..6_300).contains(&inserts), "{inserts} inserts");
}

#[test]
fn events_are_valid_debezium_json() {
    for schemas in [false, true] {
        let options = Options {
            schemas,
            decimal: DecimalMode::String,
            customers: true,
            users: 50,
            ..Options::default()
        };
        let generator = Generator::new(options.clone());
        for (key, value, change) in take(options, 400) {
            let value = json(&value);
            let envelope = if schemas { &value["payload"] } else { &value };
            assert_eq!(envelope["op"].as_str(), Some(change.op.code()));
            assert_eq!(
                envelope["source"]["table"].as_str(),
                Some(change.table.name())
            );
            let image = if change.op == Op::Delete {
                "before"
            } else {
                "after"
            };
            if change.table == Table::Orders {
                let amount = envelope[image]["amount"].as_str().unwrap_or_default();
                assert!(amount.contains('.'), "{amount}");
            } else {
                let country = envelope[image]["country"].as_str().unwrap_or_default();
                assert!(COUNTRIES.contains(&country), "{country}");
            }
            let key = json(&key);
            if schemas {
                let topic = generator.topic(change.table);
                assert_eq!(key["schema"]["name"], format!("{topic}.Key"));
                assert_eq!(value["schema"]["name"], format!("{topic}.Envelope"));
            }
            let key = if schemas { &key["payload"] } else { &key };
            assert_eq!(key["id"], envelope[image]["id"]);
        }
    }
}

#[test]
fn default_identity_sends_no_update_before_image() {
    let options = Options {
        identity: ReplicaIdentity::Default,
        customers: true,
        users: 50,
        ..Options::default()
    };
    for (_, value, change) in take(options, 1000) {
        let value = json(&value);
        match change.op {
            Op::Update | Op::Insert => assert!(value["before"].is_null()),
            Op::Delete => {
                assert!(value["before"]["id"].is_number());
                assert!(value["before"]["country"].is_null());
            }
        }
    }
}

/// An orders event without what depends on the shared clock.
fn timeless(key: &str, value: &str) -> (Value, Value, Value, Value) {
    let mut value = json(value);
    for image in ["before", "after"] {
        if let Some(row) = value[image].as_object_mut() {
            row.remove("created_at");
            row.remove("updated_at");
        }
    }
    (
        json(key),
        value["op"].take(),
        value["before"].take(),
        value["after"].take(),
    )
}

#[test]
fn customers_leave_the_orders_rows_alone() {
    let with = Options {
        customers: true,
        ..Options::default()
    };
    let orders: Vec<_> = take(with, 6000)
        .into_iter()
        .filter(|e| e.2.table == Table::Orders)
        .collect();
    assert!((2000..5000).contains(&orders.len()), "{}", orders.len());
    let alone = take(Options::default(), orders.len());
    for ((key, value, _), (key_alone, value_alone, _)) in orders.iter().zip(&alone) {
        assert_eq!(timeless(key, value), timeless(key_alone, value_alone));
    }
}

#[test]
fn customers_are_inserted_first_then_move_leave_and_return() {
    let users = 200;
    let options = Options {
        customers: true,
        users,
        ..Options::default()
    };
    let mut generator = Generator::new(options);
    let (mut key, mut value) = (String::new(), String::new());
    // The replayed customers table: id → country.
    let mut table: BTreeMap<i64, String> = BTreeMap::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for n in 0..10_000 {
        let change = generator.next_into(&mut key, &mut value);
        let event = json(&value);
        if change.table == Table::Orders {
            let user = event["after"]["user_id"]
                .as_i64()
                .or(event["before"]["user_id"].as_i64());
            assert!((1..=users as i64).contains(&user.unwrap()));
            continue;
        }
        let id = json(&key)["id"].as_i64().unwrap();
        match change.op {
            Op::Insert => {
                // Every id is inserted once, in order, before any other change.
                if table.len() < users as usize && !counts.contains_key("u") {
                    assert_eq!(id, table.len() as i64 + 1);
                }
                let country = event["after"]["country"].as_str().unwrap().to_string();
                assert!(table.insert(id, country).is_none(), "event {n}: {id} alive");
            }
            Op::Update => {
                let moved = event["after"]["country"].as_str().unwrap();
                let old = table
                    .insert(id, moved.to_string())
                    .expect("a live customer");
                assert_eq!(event["before"]["country"].as_str(), Some(old.as_str()));
                assert_ne!(old, moved, "a country move");
            }
            Op::Delete => {
                assert!(table.remove(&id).is_some(), "event {n}: {id} not alive");
            }
        }
        *counts.entry(change.op.code()).or_default() += 1;
        assert_eq!(generator.live_rows(Table::Customers), table.len());
    }
    let (inserts, updates, deletes) = (counts["c"], counts["u"], counts["d"]);
    assert!(inserts > users as usize + 20 && deletes > 50 && updates > 4 * deletes);
    // Half the first 2 × users events, then one in ten.
    let customers = inserts + updates + deletes;
    assert!(
        (1000..1400).contains(&customers),
        "{customers} customer events"
    );
    assert!(table.len() as u32 > users * 3 / 4, "{} alive", table.len());
}
