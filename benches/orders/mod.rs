//! What the benchmarks over the `orders` changelog share: its table and the columns read.

use std::sync::Arc;

use eddy_engine::debezium::{DecimalHandling, DecodeOptions, TableDecoder};
use eddy_engine::schema::{Catalog, TableDef};
use eddy_workload::{DecimalMode, Generator, Options};

/// The schema the changelog's table is in.
pub const SCHEMA: &str = include_str!("../orders.prisma");
/// The columns a typical aggregate query reads.
pub const COLUMNS: [&str; 4] = ["id", "country", "status", "amount"];

/// The first `events` (key, value) records of the generator's changelog, by default 60%
/// inserts, 30% updates, 10% deletes (tombstones left out).
pub fn changelog(options: Options, events: usize) -> Vec<(String, String)> {
    let mut generator = Generator::new(options);
    (0..events)
        .map(|_| {
            let (mut key, mut value) = (String::new(), String::new());
            generator.next_into(&mut key, &mut value);
            (key, value)
        })
        .collect()
}

/// The `orders` table and the columns read of it, as a query's plan would keep them.
pub struct Orders {
    pub table: Arc<TableDef>,
    pub columns: Vec<usize>,
    pub key_positions: Vec<usize>,
}

impl Orders {
    pub fn new() -> Self {
        let catalog = Catalog::from_prisma(SCHEMA).expect("schema parses");
        let table = catalog.table("orders").expect("orders table").clone();
        let columns: Vec<usize> = COLUMNS
            .iter()
            .map(|name| table.column_index(name).expect("column exists"))
            .collect();
        let key_positions = table
            .primary_key
            .iter()
            .map(|k| columns.iter().position(|c| c == k).expect("key is read"))
            .collect();
        Self {
            table: Arc::new(table),
            columns,
            key_positions,
        }
    }

    /// A decoder told the decimal encoding the connector was configured with.
    pub fn decoder(&self, decimal: DecimalMode) -> TableDecoder {
        let options = DecodeOptions {
            decimal_handling: match decimal {
                DecimalMode::Precise => DecimalHandling::Precise,
                DecimalMode::String => DecimalHandling::String,
            },
            ..Default::default()
        };
        TableDecoder::new(
            self.table.clone(),
            self.columns.clone(),
            self.key_positions.clone(),
            options,
        )
    }
}
