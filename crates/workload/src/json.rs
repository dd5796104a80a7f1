//! The fixed JSON pieces of the changelog: inline Connect schemas and decimal bytes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

/// A `numeric`'s unscaled value as Debezium's `precise` mode sends it: the shortest
/// big-endian two's-complement bytes, base64-encoded.
pub fn unscaled_base64(unscaled: i64) -> String {
    let bytes = unscaled.to_be_bytes();
    let redundant = |pair: &[u8]| {
        (pair[0] == 0x00 && pair[1] & 0x80 == 0) || (pair[0] == 0xff && pair[1] & 0x80 != 0)
    };
    let skip = bytes.windows(2).take_while(|pair| redundant(pair)).count();
    BASE64.encode(&bytes[skip..])
}

/// The inline Connect schema of `table`'s keys: its `id`.
pub fn key_schema(prefix: &str, table: &str) -> String {
    format!(
        r#"{{"type":"struct","fields":[{{"type":"int32","optional":false,"field":"id"}}],"optional":false,"name":"{prefix}.public.{table}.Key"}}"#
    )
}

fn row_schema(prefix: &str, table: &str, fields: &str, side: &str) -> String {
    format!(
        r#"{{"type":"struct","fields":[{fields}],"optional":true,"name":"{prefix}.public.{table}.Value","field":"{side}"}}"#
    )
}

/// The inline Connect schema of `table`'s change events, whose rows have `fields`.
pub fn value_schema(prefix: &str, table: &str, fields: &str) -> String {
    let before = row_schema(prefix, table, fields, "before");
    let after = row_schema(prefix, table, fields, "after");
    let source = r#"{"type":"struct","fields":[{"type":"string","optional":false,"field":"version"},{"type":"string","optional":false,"field":"connector"},{"type":"string","optional":false,"field":"name"},{"type":"int64","optional":false,"field":"ts_ms"},{"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"},"default":"false","field":"snapshot"},{"type":"string","optional":false,"field":"db"},{"type":"string","optional":true,"field":"sequence"},{"type":"int64","optional":true,"field":"ts_us"},{"type":"int64","optional":true,"field":"ts_ns"},{"type":"string","optional":false,"field":"schema"},{"type":"string","optional":false,"field":"table"},{"type":"int64","optional":true,"field":"txId"},{"type":"int64","optional":true,"field":"lsn"},{"type":"int64","optional":true,"field":"xmin"}],"optional":false,"name":"io.debezium.connector.postgresql.Source","field":"source"}"#;
    let transaction = r#"{"type":"struct","fields":[{"type":"string","optional":false,"field":"id"},{"type":"int64","optional":false,"field":"total_order"},{"type":"int64","optional":false,"field":"data_collection_order"}],"optional":true,"name":"event.block","version":1,"field":"transaction"}"#;
    format!(
        r#"{{"type":"struct","fields":[{before},{after},{source},{transaction},{{"type":"string","optional":false,"field":"op"}},{{"type":"int64","optional":true,"field":"ts_ms"}},{{"type":"int64","optional":true,"field":"ts_us"}},{{"type":"int64","optional":true,"field":"ts_ns"}}],"optional":false,"name":"{prefix}.public.{table}.Envelope","version":2}}"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unscaled_bytes_are_the_shortest_twos_complement() {
        assert_eq!(unscaled_base64(1999), "B88=");
        assert_eq!(unscaled_base64(0), "AA==");
        assert_eq!(unscaled_base64(128), "AIA=");
        assert_eq!(unscaled_base64(-1), "/w==");
        assert_eq!(unscaled_base64(-129), "/38=");
    }
}
