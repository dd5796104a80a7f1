//! A JSON scanner that finds a Debezium envelope's parts without parsing the rest.
//!
//! Most of a Debezium message is what no query reads: the `source` block, timestamps, the
//! inline schema, columns outside the query. Parsing all of it into values costs more than
//! everything the engine does afterwards, so the decoder walks the bytes instead, taking
//! spans (sub-slices) of the few fields it needs and jumping over the others.
//!
//! It walks the record's [structural index](super::structural), not its bytes: a token is
//! found by taking the next position, so a long string or a skipped block costs its
//! punctuation, not its length. Nothing is taken on trust for being skipped: a text the
//! scanner accepts is one serde_json accepts (grammar, numbers, literals, escapes, UTF-8,
//! nesting up to serde_json's limit), and the values a query reads are then parsed
//! strictly by [`super::cells`].

use super::structural::{Indexer, WINDOW, Window};

/// A position in the message, for errors.
pub type Result<T> = std::result::Result<T, String>;

/// Walks one JSON text, token by token over its [structural index](super::structural).
pub struct Scanner<'a> {
    bytes: &'a [u8],
    /// Where the next token is looked for: just after the last one taken.
    pos: usize,
    index: Indexer,
    /// The positions of the window indexed last, relative to `base`; `at` is the next one
    /// not yet taken, and `len` how many there are.
    window: Window,
    base: usize,
    at: usize,
    len: usize,
    /// Objects and arrays open around the scanner.
    depth: usize,
}

/// How deeply values may nest: serde_json's limit (its 128th level is refused).
const MAX_DEPTH: usize = 127;

impl<'a> Scanner<'a> {
    /// A scanner at the start of `bytes`; fails when they are not UTF-8.
    pub fn new(bytes: &'a [u8]) -> Result<Self> {
        if !bytes.is_ascii()
            && let Err(e) = std::str::from_utf8(bytes)
        {
            return Err(format!("invalid UTF-8 at byte {}", e.valid_up_to()));
        }
        Ok(Self {
            bytes,
            pos: 0,
            index: Indexer::default(),
            window: [0; WINDOW],
            base: 0,
            at: 0,
            len: 0,
            depth: 0,
        })
    }

    #[cold]
    fn error(&self, what: &str) -> String {
        match self.bytes.get(self.pos) {
            Some(&b) => format!("{what} at byte {}, found {:?}", self.pos, b as char),
            None => format!("{what} at byte {}, found the end", self.pos),
        }
    }

    /// The next structural position not taken, indexing the next window when this one is
    /// used up; `None` past the last.
    #[inline(always)]
    fn structural(&mut self) -> Result<Option<usize>> {
        if self.at < self.len {
            return Ok(Some(self.base + self.window[self.at] as usize));
        }
        self.refill()
    }

    fn refill(&mut self) -> Result<Option<usize>> {
        while !self.index.done(self.bytes) {
            (self.base, self.len) = self.index.fill(self.bytes, &mut self.window)?;
            self.at = 0;
            if self.len > 0 {
                return Ok(Some(self.base + self.window[0] as usize));
            }
        }
        Ok(None)
    }

    /// The next token's first byte and position, not taken: a structural one, or a number
    /// or literal in the gap before it. Whitespace before it is passed over.
    #[inline(always)]
    fn token(&mut self) -> Result<Option<(u8, usize)>> {
        let next = self.structural()?;
        if let Some(at) = next
            && at == self.pos
        {
            return Ok(Some((self.bytes[at], at)));
        }
        let end = next.unwrap_or(self.bytes.len());
        Ok(self.bytes[self.pos..end]
            .iter()
            .position(|b| !b.is_ascii_whitespace() || *b == b'\x0c')
            .map(|i| (self.bytes[self.pos + i], self.pos + i))
            .or_else(|| next.map(|at| (self.bytes[at], at))))
    }

    /// Takes the structural byte `byte` as the next token.
    #[inline(always)]
    fn expect(&mut self, byte: u8) -> Result<()> {
        match self.token()? {
            Some((b, at)) if b == byte => {
                self.take(at);
                Ok(())
            }
            _ => Err(self.expected(byte)),
        }
    }

    /// Takes the structural at `at`, the next one.
    #[inline(always)]
    fn take(&mut self, at: usize) {
        self.at += 1;
        self.pos = at + 1;
    }

    #[cold]
    #[inline(never)]
    fn expected(&self, byte: u8) -> String {
        self.error(&format!("expected {:?}", byte as char))
    }

    /// Whether the next value is `null`.
    pub fn peek_null(&mut self) -> bool {
        matches!(self.token(), Ok(Some((b'n', at))) if self.bytes[at..].starts_with(b"null"))
    }

    /// Whether the next value is an object.
    pub fn peek_object(&mut self) -> bool {
        matches!(self.token(), Ok(Some((b'{', _))))
    }

    /// Checks that only whitespace is left.
    pub fn end(&mut self) -> Result<()> {
        match self.token()? {
            None => Ok(()),
            Some((_, at)) => {
                self.pos = at;
                Err(self.error("trailing characters"))
            }
        }
    }

    /// A string's raw contents (between the quotes, escapes untouched) and whether it holds
    /// escapes; the scanner is left after the closing quote.
    #[inline]
    fn string(&mut self) -> Result<(&'a [u8], bool)> {
        self.expect(b'"')?;
        let start = self.pos;
        // Inside a string nothing is structural: the next position is its closing quote.
        let end = self
            .structural()?
            .ok_or_else(|| self.error("unterminated string"))?;
        self.take(end);
        let raw = &self.bytes[start..end];
        Ok((raw, self.index.saw_backslash() && raw.contains(&b'\\')))
    }

    /// Takes one value, checked to be JSON through and through, and returns its raw text.
    pub fn value(&mut self) -> Result<&'a [u8]> {
        let (start, taken) = self.leaf()?;
        if !taken {
            self.container()?;
        }
        Ok(&self.bytes[start..self.pos])
    }

    /// Where the next value starts, and whether it was taken: a string, number or literal
    /// is; an object or array is left for [`Scanner::container`].
    #[inline]
    fn leaf(&mut self) -> Result<(usize, bool)> {
        let (first, start) = self
            .token()?
            .ok_or_else(|| self.error("expected a value"))?;
        match first {
            b'"' => self.string().map(|_| ()),
            b'{' | b'[' => return Ok((start, false)),
            b'}' | b']' | b',' | b':' => Err(self.error("expected a value")),
            _ => self.scalar(start),
        }?;
        Ok((start, true))
    }

    /// Takes the number or literal starting at `start`: the gap up to the next structural.
    fn scalar(&mut self, start: usize) -> Result<()> {
        let end = self.structural()?.unwrap_or(self.bytes.len());
        let raw = self.bytes[start..end].trim_ascii_end();
        self.pos = start;
        if !is_scalar(raw) {
            return Err(self.error("expected a value"));
        }
        self.pos = start + raw.len();
        Ok(())
    }

    /// Takes a whole object or array, checking its grammar as serde_json would.
    fn container(&mut self) -> Result<()> {
        // Bit `l` says whether level `l` is an object.
        let mut objects = 0u128;
        let mut level = 0usize;
        // Here the next token opens a level.
        'open: loop {
            if self.depth + level >= MAX_DEPTH {
                return Err(self.error("nested too deeply"));
            }
            let (b, at) = self
                .token()?
                .ok_or_else(|| self.error("expected a value"))?;
            self.take(at);
            objects = (objects & !(1 << level)) | (u128::from(b == b'{') << level);
            level += 1;
            let mut first = true;
            loop {
                let object = objects & (1 << (level - 1)) != 0;
                let close = if object { b'}' } else { b']' };
                let next = self.token()?;
                if let Some((b, at)) = next
                    && b == close
                {
                    self.take(at);
                    level -= 1;
                    if level == 0 {
                        return Ok(());
                    }
                    first = false;
                    continue;
                }
                if !first {
                    self.expect(b',')?;
                }
                first = false;
                if object {
                    self.string()?;
                    self.expect(b':')?;
                }
                if !self.leaf()?.1 {
                    continue 'open;
                }
            }
        }
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
        if self.depth >= MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.expect(b'{')?;
        self.depth += 1;
        if let Some((b'}', at)) = self.token()? {
            self.take(at);
            self.depth -= 1;
            return Ok(());
        }
        loop {
            let (key, escaped) = self.string()?;
            self.expect(b':')?;
            field(self, key, escaped)?;
            match self.token()? {
                Some((b',', at)) => self.take(at),
                Some((b'}', at)) => {
                    self.take(at);
                    self.depth -= 1;
                    return Ok(());
                }
                _ => return Err(self.error("expected ',' or '}'")),
            }
        }
    }
}

/// Whether `raw` is a JSON literal or a number serde_json reads (one that is not infinite
/// as an `f64`).
fn is_scalar(raw: &[u8]) -> bool {
    match raw.first() {
        Some(b't') => raw == b"true",
        Some(b'f') => raw == b"false",
        Some(b'n') => raw == b"null",
        Some(b'-' | b'0'..=b'9') => is_number(raw),
        _ => false,
    }
}

fn is_number(raw: &[u8]) -> bool {
    let digits = |i: &mut usize| {
        let start = *i;
        while raw.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > start
    };
    let mut i = usize::from(raw[0] == b'-');
    match raw.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    let mut plain = true;
    if raw.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
        plain = false;
    }
    if let Some(b'e' | b'E') = raw.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = raw.get(i) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
        plain = false;
    }
    // Up to 19 digits always fit an `f64`'s range; longer or scaled ones may not.
    i == raw.len()
        && ((plain && raw.len() <= 19)
            || std::str::from_utf8(raw)
                .ok()
                .and_then(|text| text.parse::<f64>().ok())
                .is_some_and(f64::is_finite))
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
        let mut scanner = Scanner::new(json.as_bytes())?;
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
            // A cut text is always refused; a damaged one exactly when serde_json refuses it.
            let bytes = text.as_bytes();
            let cut = rng.random_range(0..bytes.len());
            assert!(
                keys_of(&bytes[..cut]).is_err(),
                "{}",
                String::from_utf8_lossy(&bytes[..cut])
            );
            for _ in 0..4 {
                let damaged = damage(&mut rng, bytes);
                assert_agrees(&damaged);
            }
        }
    }

    /// `bytes` with one to three bytes replaced, inserted or removed.
    fn damage(rng: &mut rand::rngs::StdRng, bytes: &[u8]) -> Vec<u8> {
        use rand::RngExt;
        const ALPHABET: &[u8] =
            b"\"{}[],:\\ x0123456789-+.eEtrufalsn/bu\t\n\x0c\x00\x7f\xc3\xa9\xff";
        let mut damaged = bytes.to_vec();
        for _ in 0..rng.random_range(1..4) {
            let at = rng.random_range(0..damaged.len().max(1));
            let byte = ALPHABET[rng.random_range(0..ALPHABET.len())];
            match rng.random_range(0..3) {
                0 if at < damaged.len() => damaged[at] = byte,
                1 => damaged.insert(at.min(damaged.len()), byte),
                _ if at < damaged.len() => {
                    damaged.remove(at);
                }
                _ => {}
            }
        }
        damaged
    }

    /// Checks that the scanner accepts `bytes` exactly when serde_json reads them as an
    /// object.
    fn assert_agrees(bytes: &[u8]) {
        let serde = serde_json::from_slice::<serde_json::Value>(bytes);
        let want = serde.as_ref().is_ok_and(serde_json::Value::is_object);
        let got = keys_of(bytes);
        assert_eq!(
            got.is_ok(),
            want,
            "{:?}: scanner {got:?}, serde_json {serde:?}",
            String::from_utf8_lossy(bytes)
        );
    }

    #[test]
    fn refuses_exactly_what_serde_json_refuses() {
        let cases: &[&[u8]] = &[
            br#"{"a": 1e400}"#,
            br#"{"a": -1e400}"#,
            br#"{"a": 0e400}"#,
            br#"{"a": 1e-400}"#,
            br#"{"a": 123456789012345678901234567890}"#,
            br#"{"a": 18446744073709551616}"#,
            br#"{"a": -9223372036854775809}"#,
            br#"{"a": -}"#,
            br#"{"a": 01}"#,
            br#"{"a": -0}"#,
            br#"{"a": 1.}"#,
            br#"{"a": .5}"#,
            br#"{"a": 1e}"#,
            br#"{"a": 1E+2}"#,
            br#"{"a": +1}"#,
            br#"{"a": tru}"#,
            br#"{"a": nulll}"#,
            br#"{"a": [true false]}"#,
            br#"{"a": [1,]}"#,
            br#"{"a": [,1]}"#,
            br#"{"a": {"b" 1}}"#,
            br#"{"a": {"b": 1,}}"#,
            br#"{"a": {1: 1}}"#,
            br#"{"a": "\u00e9"}"#,
            br#"{"a": "\u00"}"#,
            br#"{"a": "\ud800"}"#,
            br#"{"a": "\udc00"}"#,
            br#"{"a": "\ud800\udc00"}"#,
            br#"{"a": "\ud800\u0041"}"#,
            br#"{"a": "\q"}"#,
            b"{\"a\": \"tab\there\"}",
            b"{\"a\":\x0c1}",
            b"{\"a\": \"\xc3\xa9\"}",
            b"{\"a\": \"\xc3\"}",
            b"{\"a\": \"\xff\"}",
            b"{\"a\": 1\xff}",
            br#"{"a": 1} "#,
            br#"{"a": 1} {}"#,
            br#"{"a": 1 2}"#,
            br#"{"a" : 1 , "b" : [ 1 , { } ] }"#,
        ];
        for case in cases {
            assert_agrees(case);
        }
        for depth in [125, 126, 127, 128, 129, 400] {
            let nested = |open: &str, close: &str| {
                format!(
                    "{{\"a\":{}1{}}}",
                    open.repeat(depth - 1),
                    close.repeat(depth - 1)
                )
            };
            assert_agrees(nested("[", "]").as_bytes());
            assert_agrees(nested("{\"b\":", "}").as_bytes());
        }
    }

    fn keys_of(bytes: &[u8]) -> Result<usize> {
        let mut scanner = Scanner::new(bytes)?;
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
