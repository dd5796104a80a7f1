//! A record's structural index, found 64 bytes at a time as simdjson's first stage finds it.
//!
//! For each block of 64 bytes a few vector compares give one bit per byte for quotes,
//! backslashes, punctuation (`{}[]:,`) and control characters. From those, with a handful
//! of integer operations per block: which quotes are escaped, which bytes are inside a
//! string (a prefix XOR of the quotes), and so which punctuation is structure. What is left
//! is a list of positions: every quote and every punctuation mark outside strings. The
//! [`Scanner`](super::scan::Scanner) walks that list instead of the bytes, so a string or a
//! run of digits costs the same whatever its length.
//!
//! The checks that need the bytes themselves are made here, on every block: no control
//! character inside a string, every escape one JSON allows (a `\u` surrogate only in a
//! pair). Everything else JSON demands of the text (the order of tokens, the form of
//! numbers and literals, whitespace between tokens) is for the scanner, which sees every
//! gap between two positions. UTF-8 is checked over the whole record up front.
//!
//! The index is built a window at a time ([`WINDOW`] bytes), so a huge record needs no
//! huge index and an error early in it stops the work there.

/// Bytes indexed per [`Indexer::fill`]: four blocks.
pub const WINDOW: usize = 256;

/// Positions one window holds at most: every byte structural.
pub type Window = [u16; WINDOW];

/// Walks a record block by block, carrying what one block says of the next.
#[derive(Default)]
pub struct Indexer {
    /// The next byte to index.
    next: usize,
    /// All ones when the previous block ended inside a string.
    in_string: u64,
    /// Whether the previous block ended with a backslash escaping the next byte.
    escape_carry: bool,
    /// Where the escape completing a surrogate pair must start, once a leading half is seen.
    trail_at: Option<usize>,
    /// Whether a backslash has been seen: strings may then hold escapes.
    backslashes: bool,
}

impl Indexer {
    /// Whether every byte of `bytes` is indexed.
    pub fn done(&self, bytes: &[u8]) -> bool {
        self.next >= bytes.len()
    }

    /// Whether a backslash has been seen so far.
    pub fn saw_backslash(&self) -> bool {
        self.backslashes
    }

    /// Indexes the next window of `bytes`: the positions (relative to the window's start,
    /// returned first) of its structural bytes go to `out`, their number returned second.
    /// Fails on a control character in a string, a bad escape, or a string left open.
    pub fn fill(&mut self, bytes: &[u8], out: &mut Window) -> Result<(usize, usize), String> {
        let base = self.next;
        let end = bytes.len().min(base + WINDOW);
        let mut len = 0;
        let mut at = base;
        while at < end {
            let masks = match bytes.get(at..at + 64) {
                Some(block) => Masks::of(block.try_into().expect("64 bytes")),
                None => {
                    // Spaces pad the last block: no mask marks them.
                    let mut block = [b' '; 64];
                    block[..end - at].copy_from_slice(&bytes[at..end]);
                    Masks::of(&block)
                }
            };
            let quotes = if masks.backslash == 0 && !self.escape_carry {
                masks.quote
            } else {
                self.backslashes = true;
                masks.quote & !self.escaped(bytes, at, masks.backslash)?
            };
            let inside = prefix_xor(quotes) ^ self.in_string;
            self.in_string = ((inside as i64) >> 63) as u64;
            if masks.control & inside != 0 {
                let i = at + (masks.control & inside).trailing_zeros() as usize;
                return Err(format!("control character in a string at byte {i}"));
            }
            let mut marks = (masks.punctuation & !inside) | quotes;
            let offset = (at - base) as u16;
            while marks != 0 {
                out[len] = offset + marks.trailing_zeros() as u16;
                len += 1;
                marks &= marks - 1;
            }
            at += 64;
        }
        self.next = end;
        if self.done(bytes) && self.in_string != 0 {
            return Err(format!("unterminated string at byte {}", bytes.len()));
        }
        Ok((base, len))
    }

    /// The bits of the block at `at` whose byte a backslash escapes, each escape checked.
    #[cold]
    fn escaped(&mut self, bytes: &[u8], at: usize, mut backslash: u64) -> Result<u64, String> {
        let mut escaped = u64::from(self.escape_carry);
        backslash &= !escaped;
        self.escape_carry = false;
        while backslash != 0 {
            let i = backslash.trailing_zeros();
            self.check_escape(bytes, at + i as usize)?;
            if i == 63 {
                self.escape_carry = true;
                break;
            }
            let next = 1u64 << (i + 1);
            escaped |= next;
            backslash &= !(next | (1 << i));
        }
        Ok(escaped)
    }

    /// Checks the escape whose backslash is at `at`: `\"`, `\\`, `\/`, `\b`, `\f`, `\n`,
    /// `\r`, `\t`, or `\u` and four hex digits, a surrogate only as half of a pair.
    fn check_escape(&mut self, bytes: &[u8], at: usize) -> Result<(), String> {
        let bad = || format!("invalid escape at byte {at}");
        match bytes.get(at + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(()),
            Some(b'u') => {
                let unit = hex4(bytes, at + 2).ok_or_else(bad)?;
                match unit {
                    0xD800..=0xDBFF => {
                        let trail = (bytes.get(at + 6..at + 8) == Some(b"\\u"))
                            .then(|| hex4(bytes, at + 8))
                            .flatten();
                        if !matches!(trail, Some(0xDC00..=0xDFFF)) {
                            return Err(format!("lone leading surrogate at byte {at}"));
                        }
                        self.trail_at = Some(at + 6);
                        Ok(())
                    }
                    0xDC00..=0xDFFF if self.trail_at != Some(at) => {
                        Err(format!("lone trailing surrogate at byte {at}"))
                    }
                    _ => Ok(()),
                }
            }
            _ => Err(bad()),
        }
    }
}

/// The value of four hex digits at `at`.
fn hex4(bytes: &[u8], at: usize) -> Option<u16> {
    let digits = bytes.get(at..at + 4)?;
    digits.iter().try_fold(0u16, |v, &d| {
        let d = (d as char).to_digit(16)?;
        Some(v << 4 | d as u16)
    })
}

/// Bit `i` set where an odd number of bits at or below `i` are: set from an opening quote
/// up to (not including) its closing one.
#[inline(always)]
fn prefix_xor(mut bits: u64) -> u64 {
    bits ^= bits << 1;
    bits ^= bits << 2;
    bits ^= bits << 4;
    bits ^= bits << 8;
    bits ^= bits << 16;
    bits ^= bits << 32;
    bits
}

/// One block's bytes of each kind the index needs, bit `i` for byte `i`.
struct Masks {
    quote: u64,
    backslash: u64,
    /// `{`, `}`, `[`, `]`, `:` and `,`.
    punctuation: u64,
    /// Bytes below 0x20.
    control: u64,
}

impl Masks {
    #[inline(always)]
    fn of(block: &[u8; 64]) -> Masks {
        let mut masks = Masks {
            quote: 0,
            backslash: 0,
            punctuation: 0,
            control: 0,
        };
        for (n, chunk) in block.chunks_exact(16).enumerate() {
            let [quote, backslash, punctuation, control] =
                classify(chunk.try_into().expect("16 bytes"));
            let shift = 16 * n;
            masks.quote |= u64::from(quote) << shift;
            masks.backslash |= u64::from(backslash) << shift;
            masks.punctuation |= u64::from(punctuation) << shift;
            masks.control |= u64::from(control) << shift;
        }
        masks
    }
}

/// Sixteen bytes' quotes, backslashes, punctuation and control characters. On x86_64 with
/// SSE2 (part of its baseline, so always there): `{`/`[` and `}`/`]` differ by one bit
/// (0x20), so setting it finds both brackets of a kind with one compare.
#[inline(always)]
fn classify(chunk: &[u8; 16]) -> [u16; 4] {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128,
            _mm_set1_epi8,
        };
        // SAFETY: SSE2 is enabled on every x86_64 target, and the load reads the 16 bytes
        // of `chunk` (unaligned loads are allowed).
        unsafe {
            let bytes = _mm_loadu_si128(chunk.as_ptr().cast());
            let eq = |b: u8| _mm_cmpeq_epi8(bytes, _mm_set1_epi8(b as i8));
            let folded = _mm_or_si128(bytes, _mm_set1_epi8(0x20));
            let fold_eq = |b: u8| _mm_cmpeq_epi8(folded, _mm_set1_epi8(b as i8));
            let punctuation = _mm_or_si128(
                _mm_or_si128(fold_eq(b'{'), fold_eq(b'}')),
                _mm_or_si128(eq(b':'), eq(b',')),
            );
            let low = _mm_set1_epi8(0x1f);
            let control = _mm_cmpeq_epi8(_mm_max_epu8(bytes, low), low);
            [
                _mm_movemask_epi8(eq(b'"')) as u16,
                _mm_movemask_epi8(eq(b'\\')) as u16,
                _mm_movemask_epi8(punctuation) as u16,
                _mm_movemask_epi8(control) as u16,
            ]
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let mut masks = [0u16; 4];
        for (i, &b) in chunk.iter().enumerate() {
            let kind = match b {
                b'"' => 0,
                b'\\' => 1,
                b'{' | b'}' | b'[' | b']' | b':' | b',' => 2,
                0..0x20 => 3,
                _ => continue,
            };
            masks[kind] |= 1 << i;
        }
        masks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The positions, by a byte-at-a-time reading of the same rules: a backslash escapes
    /// the next byte wherever it is (outside a string, the text is no JSON anyway).
    fn naive(bytes: &[u8]) -> Vec<usize> {
        let (mut inside, mut escaped, mut out) = (false, false, Vec::new());
        for (i, &b) in bytes.iter().enumerate() {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                inside = !inside;
                out.push(i);
            } else if !inside && b"{}[]:,".contains(&b) {
                out.push(i);
            }
        }
        out
    }

    fn index(bytes: &[u8]) -> Result<Vec<usize>, String> {
        let (mut indexer, mut window, mut out) = (Indexer::default(), [0; WINDOW], Vec::new());
        while !indexer.done(bytes) {
            let (base, len) = indexer.fill(bytes, &mut window)?;
            out.extend(window[..len].iter().map(|&p| base + p as usize));
        }
        Ok(out)
    }

    #[test]
    fn positions_match_a_byte_by_byte_reading() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let pieces: [&[u8]; 9] = [b"\"", b"\\\\", b"\\\"", b"{", b"]", b":", b",", b"ab", b" "];
        for _ in 0..3_000 {
            let mut text = b"\"".to_vec();
            for _ in 0..rng.random_range(0..200) {
                text.extend_from_slice(pieces[rng.random_range(0..pieces.len())]);
            }
            text.push(b'"');
            let want = naive(&text);
            match index(&text) {
                Ok(got) => assert_eq!(got, want, "{}", String::from_utf8_lossy(&text)),
                Err(e) => assert!(e.contains("unterminated"), "{e}"),
            }
        }
    }

    #[test]
    fn escapes_and_control_characters_are_checked() {
        for good in [r#""\u00e9\ud83d\ude00\n\/""#, r#""\\u""#, r#""\\""#] {
            assert!(index(good.as_bytes()).is_ok(), "{good}");
        }
        for bad in [
            r#""\x""#,
            r#""\u12""#,
            r#""\ud83d""#,
            r#""\ude00""#,
            r#""\ud83d\u0041""#,
            "\"a\tb\"",
            r#""open"#,
        ] {
            assert!(index(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
