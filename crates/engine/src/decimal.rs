//! Exact decimal helpers over `i256` unscaled values: parsing, rescaling and formatting.
//!
//! Debezium sends decimals three ways (unscaled bytes, plain text, doubles) and the engine
//! keeps them as Arrow decimals at the column's scale. Everything here is exact integer
//! arithmetic; rounding happens only when a value carries more fraction digits than its
//! column, and then half away from zero, as PostgreSQL rounds `numeric`.

use arrow::datatypes::i256;

/// `10^exp`, or `None` past `i256`.
pub fn pow10(exp: u32) -> Option<i256> {
    i256::from_i128(10).checked_pow(exp)
}

/// Changes the scale of an unscaled value, rounding half away from zero when digits drop.
pub fn rescale(value: i256, from_scale: i32, to_scale: i32) -> Option<i256> {
    if to_scale >= from_scale {
        return value.checked_mul(pow10((to_scale - from_scale) as u32)?);
    }
    let divisor = pow10((from_scale - to_scale) as u32)?;
    let quotient = value.checked_div(divisor)?;
    let remainder = value.checked_rem(divisor)?;
    let twice = remainder.checked_abs()?.checked_mul(i256::from_i128(2))?;
    if twice >= divisor {
        quotient.checked_add(value.signum())
    } else {
        Some(quotient)
    }
}

/// Whether an unscaled value fits `precision` digits.
pub fn fits_precision(value: i256, precision: u8) -> bool {
    match (pow10(precision as u32), value.checked_abs()) {
        (Some(limit), Some(abs)) => abs < limit,
        (None, _) => true,
        (_, None) => false,
    }
}

/// Parses decimal text (`-12.50`, `1e-5`, `3.`) into an unscaled value at `scale`.
pub fn parse_text(text: &str, scale: i32) -> Option<i256> {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], text[at + 1..].parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (negative, digits) = match mantissa.as_bytes().first()? {
        b'-' => (true, &mantissa[1..]),
        b'+' => (false, &mantissa[1..]),
        _ => (false, mantissa),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let mut unscaled = i256::ZERO;
    for c in int_part.bytes().chain(frac_part.bytes()) {
        if !c.is_ascii_digit() {
            return None;
        }
        unscaled = unscaled
            .checked_mul(i256::from_i128(10))?
            .checked_add(i256::from_i128((c - b'0') as i128))?;
    }
    if negative {
        unscaled = unscaled.checked_neg()?;
    }
    let text_scale = i32::try_from(frac_part.len()).ok()?.checked_sub(exponent)?;
    rescale(unscaled, text_scale, scale)
}

/// Reads big-endian two's-complement bytes (Kafka Connect's `Decimal` encoding).
pub fn from_be_bytes(bytes: &[u8]) -> Option<i256> {
    if bytes.len() > 32 {
        return None;
    }
    let fill = match bytes.first() {
        Some(b) if b & 0x80 != 0 => 0xff,
        _ => 0,
    };
    let mut buf = [fill; 32];
    buf[32 - bytes.len()..].copy_from_slice(bytes);
    Some(i256::from_be_bytes(buf))
}

/// Formats an unscaled value with exactly `scale` fraction digits, as SQL prints it.
pub fn format(value: i256, scale: i32) -> String {
    let digits = value.to_string();
    let (sign, digits) = match digits.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", digits.as_str()),
    };
    if scale <= 0 {
        let zeros = "0".repeat((-scale) as usize);
        return format!("{sign}{digits}{zeros}");
    }
    let scale = scale as usize;
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int_part, frac_part) = padded.split_at(padded.len() - scale);
    format!("{sign}{int_part}.{frac_part}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(v: i128) -> i256 {
        i256::from_i128(v)
    }

    #[test]
    fn parses_text_at_scale() {
        assert_eq!(parse_text("19.99", 2), Some(n(1999)));
        assert_eq!(parse_text("-0.0001", 4), Some(n(-1)));
        assert_eq!(parse_text("25.5", 2), Some(n(2550)));
        assert_eq!(parse_text("100", 0), Some(n(100)));
        assert_eq!(parse_text("1e-3", 4), Some(n(10)));
        assert_eq!(parse_text("1.5E2", 0), Some(n(150)));
        assert_eq!(parse_text("abc", 2), None);
        assert_eq!(parse_text("", 2), None);
        assert_eq!(parse_text("-", 2), None);
    }

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(parse_text("0.125", 2), Some(n(13)));
        assert_eq!(parse_text("-0.125", 2), Some(n(-13)));
        assert_eq!(parse_text("0.124", 2), Some(n(12)));
        assert_eq!(rescale(n(-15), 1, 0), Some(n(-2)));
    }

    #[test]
    fn reads_twos_complement_bytes() {
        assert_eq!(from_be_bytes(&[0x07, 0xcf]), Some(n(1999)));
        assert_eq!(from_be_bytes(&[0xff]), Some(n(-1)));
        assert_eq!(from_be_bytes(&[]), Some(n(0)));
        assert_eq!(from_be_bytes(&[0u8; 33]), None);
    }

    #[test]
    fn formats_with_scale() {
        assert_eq!(format(n(2550), 2), "25.50");
        assert_eq!(format(n(-1), 4), "-0.0001");
        assert_eq!(format(n(7), 0), "7");
        assert_eq!(format(n(0), 2), "0.00");
    }

    #[test]
    fn checks_precision() {
        assert!(fits_precision(n(99999), 5));
        assert!(!fits_precision(n(100000), 5));
        assert!(!fits_precision(n(-100000), 5));
    }
}
