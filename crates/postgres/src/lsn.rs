//! Log sequence numbers: positions in PostgreSQL's WAL, written `XXXXXXXX/XXXXXXXX`.

use std::fmt;

use crate::error::{Error, Result};

/// A WAL position.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

impl Lsn {
    /// Parses PostgreSQL's `high/low` hexadecimal form.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || Error::Protocol(format!("`{text}` is not an LSN"));
        let (high, low) = text.split_once('/').ok_or_else(bad)?;
        let high = u64::from_str_radix(high, 16).map_err(|_| bad())?;
        let low = u64::from_str_radix(low, 16).map_err(|_| bad())?;
        if high > u64::from(u32::MAX) || low > u64::from(u32::MAX) {
            return Err(bad());
        }
        Ok(Lsn(high << 32 | low))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_postgres_text() {
        for text in ["0/0", "0/1DBD0B8", "16/B374D848", "FFFFFFFF/FFFFFFFF"] {
            assert_eq!(Lsn::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(Lsn::parse("0/1DBD0B8").unwrap().0, 31_183_032);
        for bad in ["", "1", "x/1", "100000000/0"] {
            assert!(Lsn::parse(bad).is_err(), "{bad}");
        }
    }
}
