//! What a changelog is made of: its mix of operations, its encodings and its tables.

/// How `numeric` values are written (Debezium's `decimal.handling.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DecimalMode {
    /// Base64 big-endian unscaled bytes: Debezium's default.
    #[default]
    Precise,
    /// Decimal text such as `"123.45"`.
    String,
}

/// What an update's and a delete's `before` image holds (the table's `REPLICA IDENTITY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplicaIdentity {
    /// The whole old row: what Flink's `debezium-json` format needs.
    #[default]
    Full,
    /// Updates carry no `before`; deletes carry the key and nulls.
    Default,
}

/// Percentages of inserts, updates and deletes of `orders`; they add up to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    pub insert: u32,
    pub update: u32,
    pub delete: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Self {
            insert: 60,
            update: 30,
            delete: 10,
        }
    }
}

impl std::str::FromStr for Mix {
    type Err = String;

    /// `"60,30,10"`: inserts, updates, deletes, in percent.
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<u32> = s
            .split(',')
            .map(|p| p.trim().parse::<u32>())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("mix {s:?}: {e}; expected INSERT,UPDATE,DELETE percentages"))?;
        match parts[..] {
            [insert, update, delete] if insert + update + delete == 100 && insert > 0 => Ok(Self {
                insert,
                update,
                delete,
            }),
            _ => Err(format!(
                "mix {s:?}: expected three percentages (inserts > 0) adding up to 100"
            )),
        }
    }
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub seed: u64,
    /// The most `orders` rows alive at once: an insert beyond it becomes an update.
    pub live_keys: u64,
    pub mix: Mix,
    /// Wrap values and keys in `{"schema", "payload"}` (the converter's `schemas.enable`).
    pub schemas: bool,
    pub decimal: DecimalMode,
    pub identity: ReplicaIdentity,
    /// The connector's topic prefix: events belong to `<prefix>.public.<table>`.
    pub prefix: String,
    /// Orders' `user_id`s are drawn from `1..=users`; they are the `customers`' ids.
    pub users: u32,
    /// Interleave the changes of a `customers` table (see [`crate::Table::Customers`]). The
    /// orders' rows stay those of the same options without it; only their timestamps and
    /// source positions move, since the clock counts every event.
    pub customers: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            seed: 1,
            live_keys: 500_000,
            mix: Mix::default(),
            schemas: false,
            decimal: DecimalMode::default(),
            identity: ReplicaIdentity::default(),
            prefix: "bench".into(),
            users: 100_000,
            customers: false,
        }
    }
}
