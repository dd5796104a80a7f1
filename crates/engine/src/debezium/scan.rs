//! A JSON scanner that finds a Debezium envelope's parts without parsing the rest.
//!
//! Most of a Debezium message is what no query reads: the `source` block, timestamps, the
//! inline schema, columns outside the query. Parsing all of it into values costs more than
//! everything the engine does afterwards, so the decoder walks the bytes instead, taking
//! spans (sub-slices) of the few fields it needs and jumping over the others. Structure is
//! checked everywhere (a truncated or unbalanced message is an error); the contents of
//! skipped values are not, and the values a query reads are parsed strictly by
//! [`super::cells`].

/// A position in the message, for errors.
pub type Result<T> = std::result::Result<T, String>;

/// Walks one JSON text.
pub struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    #[cold]
    fn error(&self, what: &str) -> String {
        match self.bytes.get(self.pos) {
            Some(&b) => format!("{what} at byte {}, found {:?}", self.pos, b as char),
            None => format!("{what} at byte {}, found the end", self.pos),
        }
    }

    /// The next byte that is not whitespace. Compact JSON has none between tokens, so the
    /// first byte is tried before any loop.
    #[inline(always)]
    fn peek(&mut self) -> Option<u8> {
        match self.bytes.get(self.pos) {
            Some(b' ' | b'\n' | b'\r' | b'\t') => self.peek_after_whitespace(),
            next => next.copied(),
        }
    }

    #[cold]
    fn peek_after_whitespace(&mut self) -> Option<u8> {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
        self.bytes.get(self.pos).copied()
    }

    #[inline(always)]
    fn expect(&mut self, byte: u8) -> Result<()> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.expected(byte))
        }
    }

    #[cold]
    #[inline(never)]
    fn expected(&self, byte: u8) -> String {
        self.error(&format!("expected {:?}", byte as char))
    }

    /// Whether the next value is `null`.
    pub fn peek_null(&mut self) -> bool {
        self.peek() == Some(b'n') && self.bytes[self.pos..].starts_with(b"null")
    }

    /// Whether the next value is an object.
    pub fn peek_object(&mut self) -> bool {
        self.peek() == Some(b'{')
    }

    /// Checks that only whitespace is left.
    pub fn end(&mut self) -> Result<()> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.error("trailing characters")),
        }
    }

    /// A string's raw contents (between the quotes, escapes untouched) and whether it holds
    /// escapes; the scanner is left after the closing quote.
    #[inline]
    fn string(&mut self) -> Result<(&'a [u8], bool)> {
        self.expect(b'"')?;
        let start = self.pos;
        let (end, escaped) = skip_string(self.bytes, start).ok_or_else(|| {
            self.pos = self.bytes.len();
            self.error("unterminated string")
        })?;
        self.pos = end + 1;
        Ok((&self.bytes[start..end], escaped))
    }

    /// Skips one value and returns its raw text.
    pub fn value(&mut self) -> Result<&'a [u8]> {
        let first = self.peek().ok_or_else(|| self.error("expected a value"))?;
        let start = self.pos;
        match first {
            b'"' => {
                self.string()?;
            }
            b'{' | b'[' => self.container()?,
            b'}' | b']' | b',' | b':' => return Err(self.error("expected a value")),
            _ => self.pos = find(self.bytes, self.pos, scalar_end).unwrap_or(self.bytes.len()),
        }
        Ok(&self.bytes[start..self.pos])
    }

    /// Skips a balanced object or array, strings included. Bracket kinds are checked to a
    /// depth of 128, and nesting is counted beyond.
    fn container(&mut self) -> Result<()> {
        let bytes = self.bytes;
        let mut depth = 0usize;
        // Bit `d` says whether level `d` is an object.
        let mut objects = 0u128;
        let mut i = self.pos;
        while let Some(found) = find(bytes, i, structural) {
            i = found;
            let b = bytes[i];
            match b {
                b'"' => {
                    (i, _) = skip_string(bytes, i + 1).ok_or_else(|| {
                        self.pos = bytes.len();
                        self.error("unterminated string")
                    })?;
                }
                b'{' | b'[' => {
                    if depth < 128 {
                        objects = (objects & !(1 << depth)) | (u128::from(b == b'{') << depth);
                    }
                    depth += 1;
                }
                b'}' | b']' => {
                    let open_object = depth <= 128 && objects & (1 << (depth - 1)) != 0;
                    if depth <= 128 && open_object != (b == b'}') {
                        self.pos = i;
                        return Err(self.error("unbalanced brackets"));
                    }
                    depth -= 1;
                    if depth == 0 {
                        self.pos = i + 1;
                        return Ok(());
                    }
                }
                _ => {}
            }
            i += 1;
        }
        self.pos = bytes.len();
        Err(self.error("unterminated object or array"))
    }

    /// Where `sub` (a slice of the scanned text) starts in it.
    pub fn offset_of(&self, sub: &[u8]) -> usize {
        sub.as_ptr() as usize - self.bytes.as_ptr() as usize
    }

    /// Calls `field` with each key of an object (raw, and whether escaped); `field` must
    /// consume the value, e.g. with [`Scanner::value`].
    pub fn object(
        &mut self,
        mut field: impl FnMut(&mut Self, &'a [u8], bool) -> Result<()>,
    ) -> Result<()> {
        self.expect(b'{')?;
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            let (key, escaped) = self.string()?;
            self.expect(b':')?;
            field(self, key, escaped)?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.error("expected ',' or '}'")),
            }
        }
    }
}

/// The index of the quote closing a string whose contents start at `start`, and whether
/// the string holds escapes.
fn skip_string(bytes: &[u8], start: usize) -> Option<(usize, bool)> {
    let mut i = start;
    let mut escaped = false;
    loop {
        i = find(bytes, i, quote_or_backslash)?;
        if bytes[i] == b'"' {
            return Some((i, escaped));
        }
        escaped = true;
        i += 2;
    }
}

/// The first index from `from` on whose byte `classify` marks, 16 bytes at a time: a
/// block's bit `i` says whether its byte `i` is one of those looked for. The last, short
/// block is copied into a zeroed one (the byte 0 is never looked for).
#[inline(always)]
fn find(bytes: &[u8], from: usize, classify: impl Fn(&[u8; 16]) -> u16) -> Option<usize> {
    let mut i = from;
    while let Some(block) = bytes.get(i..i + 16) {
        let marks = classify(block.try_into().expect("16 bytes"));
        if marks != 0 {
            return Some(i + marks.trailing_zeros() as usize);
        }
        i += 16;
    }
    let rest = bytes.get(i..).filter(|rest| !rest.is_empty())?;
    let mut block = [0u8; 16];
    block[..rest.len()].copy_from_slice(rest);
    let marks = classify(&block);
    (marks != 0).then(|| i + marks.trailing_zeros() as usize)
}

/// A string's end, or an escape in it.
#[inline(always)]
fn quote_or_backslash(block: &[u8; 16]) -> u16 {
    any_of(block, [b'"', b'\\'])
}

/// What a container's skip stops at: strings, and brackets opening or closing a level.
#[inline(always)]
fn structural(block: &[u8; 16]) -> u16 {
    any_of(block, [b'"', b'{', b'}', b'[', b']'])
}

/// What ends a number or a literal: the next separator, a bracket or whitespace.
#[inline(always)]
fn scalar_end(block: &[u8; 16]) -> u16 {
    any_of(block, [b',', b'}', b']', b' ', b'\n', b'\r', b'\t'])
}

/// Bit `i` set where `block[i]` is one of `set`: on x86_64 with SSE2 (part of its baseline,
/// so always there) one compare per byte of `set` for all 16 bytes at once.
#[inline(always)]
fn any_of<const N: usize>(block: &[u8; 16], set: [u8; N]) -> u16 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
            _mm_setzero_si128,
        };
        // SAFETY: SSE2 is enabled on every x86_64 target, and the load reads the 16 bytes
        // of `block` (unaligned loads are allowed).
        unsafe {
            let bytes = _mm_loadu_si128(block.as_ptr().cast());
            let mut hits = _mm_setzero_si128();
            for b in set {
                hits = _mm_or_si128(hits, _mm_cmpeq_epi8(bytes, _mm_set1_epi8(b as i8)));
            }
            _mm_movemask_epi8(hits) as u16
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        block
            .iter()
            .enumerate()
            .fold(0, |marks, (i, b)| marks | (u16::from(set.contains(b)) << i))
    }
}

/// Whether a value's raw text is `null`.
pub fn is_null(raw: &[u8]) -> bool {
    raw == b"null"
}

/// A key's text, unescaped when it holds escapes.
pub fn key_text(raw: &[u8], escaped: bool) -> Option<std::borrow::Cow<'_, str>> {
    if escaped {
        let quoted = [b"\"", raw, b"\""].concat();
        serde_json::from_slice::<String>(&quoted)
            .ok()
            .map(std::borrow::Cow::Owned)
    } else {
        std::str::from_utf8(raw)
            .ok()
            .map(std::borrow::Cow::Borrowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(json: &str) -> Result<Vec<(String, String)>> {
        let mut scanner = Scanner::new(json.as_bytes());
        let mut out = Vec::new();
        scanner.object(|s, key, escaped| {
            let key = key_text(key, escaped).unwrap_or_default().into_owned();
            let value = String::from_utf8_lossy(s.value()?).into_owned();
            out.push((key, value));
            Ok(())
        })?;
        scanner.end()?;
        Ok(out)
    }

    #[test]
    fn spans_of_every_kind_of_value() {
        let got = keys(r#" {"a": 1, "b\"q": "x\"}", "c": {"d": [1, {"e": "]"}]}, "f": null} "#);
        assert_eq!(
            got.unwrap(),
            [
                ("a".into(), "1".into()),
                ("b\"q".into(), r#""x\"}""#.into()),
                ("c".into(), r#"{"d": [1, {"e": "]"}]}"#.into()),
                ("f".into(), "null".into()),
            ]
        );
        assert_eq!(keys("{}").unwrap(), []);
    }

    /// A random JSON value: strings with escapes and multi-byte text of every length
    /// around the 16-byte blocks, numbers, literals, nested containers.
    fn random_value(rng: &mut rand::rngs::StdRng, depth: usize) -> serde_json::Value {
        use rand::RngExt;
        use serde_json::Value;
        match rng.random_range(0..if depth > 3 { 4 } else { 6 }) {
            0 => Value::Null,
            1 => Value::Bool(rng.random_bool(0.5)),
            // Eighths: exact in binary, so serde_json reads back the same number.
            2 => serde_json::json!(rng.random_range(-8_000_000..8_000_000) as f64 / 8.0),
            3 => {
                let pieces = [
                    "a",
                    "\"",
                    "\\",
                    "}",
                    "]",
                    "é",
                    "\n",
                    "{",
                    "x",
                    "0123456789abcdef",
                ];
                let n = rng.random_range(0..40);
                Value::String(
                    (0..n)
                        .map(|_| pieces[rng.random_range(0..pieces.len())])
                        .collect(),
                )
            }
            4 => Value::Array(
                (0..rng.random_range(0..5))
                    .map(|_| random_value(rng, depth + 1))
                    .collect(),
            ),
            _ => Value::Object(
                (0..rng.random_range(0..6))
                    .map(|i| {
                        (
                            format!("k{i}\"{}", "y".repeat(i * 5)),
                            random_value(rng, depth + 1),
                        )
                    })
                    .collect(),
            ),
        }
    }

    #[test]
    fn spans_are_serde_jsons_values_and_mutations_never_panic() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(17);
        for _ in 0..2_000 {
            let object = serde_json::Value::Object(
                (0..rng.random_range(1..8))
                    .map(|i| (format!("f{i}"), random_value(&mut rng, 0)))
                    .collect(),
            );
            let text = if rng.random_bool(0.5) {
                serde_json::to_string(&object).unwrap()
            } else {
                serde_json::to_string_pretty(&object).unwrap()
            };
            let got = keys(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let serde_json::Value::Object(fields) = &object else {
                unreachable!()
            };
            assert_eq!(got.len(), fields.len());
            for ((key, raw), (want_key, want)) in got.iter().zip(fields) {
                assert_eq!(key, want_key);
                let value: serde_json::Value = serde_json::from_str(raw).unwrap();
                assert_eq!(&value, want, "{text}");
            }
            // Cut or damaged, the text is scanned to an answer without a panic; a cut one
            // is always refused.
            let bytes = text.as_bytes();
            let cut = rng.random_range(0..bytes.len());
            assert!(
                keys_of(&bytes[..cut]).is_err(),
                "{}",
                String::from_utf8_lossy(&bytes[..cut])
            );
            let mut damaged = bytes.to_vec();
            let at = rng.random_range(0..damaged.len());
            damaged[at] = b"\"{}[],:\\ x"[rng.random_range(0..10)];
            let _ = keys_of(&damaged);
        }
    }

    fn keys_of(bytes: &[u8]) -> Result<usize> {
        let mut scanner = Scanner::new(bytes);
        let mut n = 0;
        scanner.object(|s, _, _| {
            s.value()?;
            n += 1;
            Ok(())
        })?;
        scanner.end()?;
        Ok(n)
    }

    #[test]
    fn broken_structure_is_an_error() {
        for bad in [
            r#"{"a": 1"#,
            r#"{"a": "x}"#,
            r#"{"a": [1, 2}"#,
            r#"{"a" 1}"#,
            r#"{"a": 1} x"#,
            r#"{"a": }"#,
            r#"["a"]"#,
            "",
        ] {
            assert!(keys(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
