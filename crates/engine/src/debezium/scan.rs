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

    fn error(&self, what: &str) -> String {
        match self.bytes.get(self.pos) {
            Some(&b) => format!("{what} at byte {}, found {:?}", self.pos, b as char),
            None => format!("{what} at byte {}, found the end", self.pos),
        }
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.bytes.get(self.pos).copied()
    }

    fn expect(&mut self, byte: u8) -> Result<()> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected {:?}", byte as char)))
        }
    }

    /// Whether the next value is `null`.
    pub fn peek_null(&mut self) -> bool {
        self.peek() == Some(b'n') && self.bytes[self.pos..].starts_with(b"null")
    }

    /// Checks that only whitespace is left.
    pub fn end(&mut self) -> Result<()> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.error("trailing characters")),
        }
    }

    /// A string's raw contents (between the quotes, escapes untouched) and whether it holds
    /// escapes; the scanner is left after the closing quote. Strings in Debezium messages
    /// are short, so a plain loop beats a vectorized search here.
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
            _ => {
                while let Some(&b) = self.bytes.get(self.pos) {
                    if matches!(b, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t') {
                        break;
                    }
                    self.pos += 1;
                }
            }
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
        loop {
            while bytes.get(i).is_some_and(|&b| !STRUCTURAL[b as usize]) {
                i += 1;
            }
            let Some(&b) = bytes.get(i) else {
                break;
            };
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

/// The bytes that matter when skipping a container.
static STRUCTURAL: [bool; 256] = {
    let mut table = [false; 256];
    table[b'"' as usize] = true;
    table[b'{' as usize] = true;
    table[b'}' as usize] = true;
    table[b'[' as usize] = true;
    table[b']' as usize] = true;
    table
};

/// The index of the quote closing a string whose contents start at `start`, and whether
/// the string holds escapes. Eight bytes are checked at a time for a quote or a backslash.
fn skip_string(bytes: &[u8], start: usize) -> Option<(usize, bool)> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_byte = |word: u64, byte: u8| {
        let x = word ^ (ONES * byte as u64);
        x.wrapping_sub(ONES) & !x & HIGHS
    };
    let mut i = start;
    let mut escaped = false;
    loop {
        while let Some(chunk) = bytes.get(i..i + 8) {
            let word = u64::from_le_bytes(chunk.try_into().ok()?);
            if has_byte(word, b'"') | has_byte(word, b'\\') != 0 {
                break;
            }
            i += 8;
        }
        match bytes.get(i)? {
            b'"' => return Some((i, escaped)),
            b'\\' => {
                escaped = true;
                i += 2;
            }
            _ => i += 1,
        }
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
