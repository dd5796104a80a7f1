//! Debezium JSON records decoded into typed row images.
//!
//! Handles the JSON converter's two shapes (`{"schema", "payload"}` and the bare envelope),
//! every op (`r`, `c`, `u`, `d`, `t`), tombstones, and the value encodings of the PostgreSQL
//! and MySQL connectors ([`value`]). Only the columns a job reads are decoded: one scan of
//! the message (`scan`) finds them and skips the rest, and their values go straight into
//! Arrow columns (`cells`), a batch's images side by side.

mod cells;
pub mod inline_schema;
pub mod position;
mod scan;
mod structural;
pub mod value;

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::schema::TableDef;
use crate::temporal::Guard;
pub use cells::Images;
use cells::{Cell, Cells, ImageColumns};
use inline_schema::FieldHint;
use position::Position;
use scan::Scanner;
pub use value::{BinaryHandling, DecimalHandling, DecodeOptions, TimePrecision};

/// The table a Debezium topic (`<prefix>.<schema>.<table>`) carries: its last part.
pub fn table_of_topic(topic: &str) -> &str {
    topic.rsplit('.').next().unwrap_or(topic)
}

/// A Debezium operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `r`: a row read by a snapshot.
    Read,
    /// `c`
    Create,
    /// `u`
    Update,
    /// `d`
    Delete,
    /// `t`: the whole table was truncated.
    Truncate,
}

/// A row image: a row of the decoder's columns (see [`TableDecoder::finish`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub row: usize,
    /// Positions of unchanged TOASTed values the source did not send; their cells hold a
    /// null until the normalizer fills in the stored value.
    pub unavailable: Vec<usize>,
}

/// One decoded change event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub op: Op,
    pub before: Option<Image>,
    pub after: Option<Image>,
    /// The Kafka key's columns, where the key holds all of them (the primary key).
    pub key: Option<Image>,
    /// Where the change is in the source's log (`source`).
    pub position: Position,
}

/// Where a column's value is in the text scanned: `start..end`.
type Span = Option<(usize, usize)>;

/// What an envelope held for `before` or `after`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Side {
    #[default]
    Absent,
    Null,
    /// An object, whose columns' spans the scan recorded.
    Object,
}

/// Where the parts of an envelope the decoder reads are, in the text scanned.
#[derive(Default)]
struct Layout {
    schema: Span,
    payload: Span,
    op: Span,
    /// Where the `source` block puts the event, when the envelope has one.
    position: Option<Position>,
    before: Side,
    after: Side,
}

/// Scans an envelope once: the spans of `before`'s and `after`'s columns go to
/// `before`/`after` (by position in `names`), the rest of what is read to the [`Layout`].
fn scan_envelope(
    bytes: &[u8],
    names: &[Box<str>],
    before: &mut [Span],
    after: &mut [Span],
) -> scan::Result<Layout> {
    let mut layout = Layout::default();
    let mut scanner = Scanner::new(bytes)?;
    scanner.object(|s, key, _| {
        let (side, spans) = match key {
            b"before" => (&mut layout.before, &mut *before),
            b"after" => (&mut layout.after, &mut *after),
            b"source" => {
                layout.position = Some(Position::scan(s)?);
                return Ok(());
            }
            _ => {
                let value = s.value()?;
                let start = s.offset_of(value);
                let span = Some((start, start + value.len()));
                match key {
                    b"schema" => layout.schema = span,
                    b"payload" => layout.payload = span,
                    b"op" => layout.op = span,
                    _ => {}
                }
                return Ok(());
            }
        };
        if s.peek_null() {
            s.value()?;
            *side = Side::Null;
        } else {
            scan_image(s, names, spans)?;
            *side = Side::Object;
        }
        Ok(())
    })?;
    scanner.end()?;
    Ok(layout)
}

/// Records the spans of an image object's columns (the first of duplicate names).
fn scan_image(s: &mut Scanner<'_>, names: &[Box<str>], spans: &mut [Span]) -> scan::Result<()> {
    spans.fill(None);
    s.object(|s, name, escaped| {
        let value = s.value()?;
        let pos = if escaped {
            let name = scan::key_text(name, true);
            names
                .iter()
                .position(|n| Some(n.as_ref()) == name.as_deref())
        } else {
            names.iter().position(|n| n.as_bytes() == name)
        };
        if let Some(pos) = pos
            && spans[pos].is_none()
        {
            let start = s.offset_of(value);
            spans[pos] = Some((start, start + value.len()));
        }
        Ok(())
    })
}

/// Decodes the records of one table, reading only some of its columns, into Arrow columns.
#[derive(Debug)]
pub struct TableDecoder {
    table: Arc<TableDef>,
    columns: Vec<usize>,
    /// The columns' names, by position.
    names: Vec<Box<str>>,
    /// Positions of the primary key within `columns`: all a `before` image is read for
    /// when the table has one.
    key_positions: Vec<usize>,
    options: DecodeOptions,
    /// Hints per distinct inline schema, keyed by a hash of its text.
    hints: HashMap<u64, Arc<Vec<Option<FieldHint>>>>,
    images: ImageColumns,
    /// Per column, what the query demands of its values (see [`Guard`]).
    guards: Vec<Option<Guard>>,
    /// Scratch space for the spans of one record's images.
    before_spans: Vec<Span>,
    after_spans: Vec<Span>,
}

impl TableDecoder {
    /// A decoder producing images of `columns` (indices into the table's columns), whose
    /// primary key is at `key_positions` among them (empty when the table has none).
    pub fn new(
        table: Arc<TableDef>,
        columns: Vec<usize>,
        key_positions: Vec<usize>,
        options: DecodeOptions,
    ) -> Self {
        let images = ImageColumns::new(columns.iter().map(|&c| table.columns[c].data_type.clone()));
        let names = columns
            .iter()
            .map(|&c| table.columns[c].name.as_str().into())
            .collect();
        Self {
            guards: vec![None; columns.len()],
            before_spans: vec![None; columns.len()],
            after_spans: vec![None; columns.len()],
            table,
            columns,
            names,
            key_positions,
            options,
            hints: HashMap::new(),
            images,
        }
    }

    /// A decoder of the same table, columns, options and guards, with no cached hints.
    pub fn fresh(&self) -> Self {
        Self::new(
            Arc::clone(&self.table),
            self.columns.clone(),
            self.key_positions.clone(),
            self.options,
        )
        .with_guards(self.guards.clone())
    }

    /// The decoder refusing records whose values of a column fail its guard (positions as
    /// `columns`), so what the query cannot compute with is a dead letter naming the column.
    pub fn with_guards(mut self, guards: Vec<Option<Guard>>) -> Self {
        self.guards = guards;
        self
    }

    /// Decodes one record; `Ok(None)` for a tombstone (a null value), which carries nothing
    /// the preceding delete did not. A refused record leaves no image behind.
    pub fn decode(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Result<Option<Event>> {
        let fail = |message: String| Error::event(topic, message);
        let Some(value) = value.filter(|v| !is_json_null(v)) else {
            return Ok(None);
        };
        let mut before_spans = std::mem::take(&mut self.before_spans);
        let mut after_spans = std::mem::take(&mut self.after_spans);
        let decoded = self.decode_value(value, key, &mut before_spans, &mut after_spans);
        self.before_spans = before_spans;
        self.after_spans = after_spans;
        decoded.map_err(fail)
    }

    fn decode_value(
        &mut self,
        value: &[u8],
        key: Option<&[u8]>,
        before_spans: &mut [Span],
        after_spans: &mut [Span],
    ) -> Result<Option<Event>, String> {
        let outer = scan_envelope(value, &self.names, before_spans, after_spans)
            .map_err(|e| format!("value is not JSON: {e}"))?;
        let (hints, text, wire) = match outer.payload {
            Some((start, end)) => {
                let payload = &value[start..end];
                if scan::is_null(payload) {
                    return Ok(None);
                }
                let hints = match outer.schema {
                    Some((start, end)) => Some(self.hints_for(&value[start..end])?),
                    None => None,
                };
                let inner = scan_envelope(payload, &self.names, before_spans, after_spans)
                    .map_err(|e| format!("payload is not an envelope: {e}"))?;
                (hints, payload, inner)
            }
            None => (None, value, outer),
        };
        let op = match wire.op.map(|(start, end)| &text[start..end]) {
            Some(b"\"r\"") => Op::Read,
            Some(b"\"c\"") => Op::Create,
            Some(b"\"u\"") => Op::Update,
            Some(b"\"d\"") => Op::Delete,
            Some(b"\"t\"") => Op::Truncate,
            Some(b"null") | None => return Err("not a Debezium change event: no `op`".into()),
            Some(other) => {
                return Err(format!("unknown op {}", String::from_utf8_lossy(other)));
            }
        };
        let hints = hints.as_deref().map(Vec::as_slice);
        // A `before` image may legitimately lack columns (REPLICA IDENTITY DEFAULT sends
        // the key only); it is only ever read for its key or, on a table without one, as a
        // retraction.
        let keyed = !self.key_positions.is_empty();
        let before = match wire.before {
            Side::Object => Some(
                self.image(text, before_spans, hints, true, keyed)
                    .map_err(|e| format!("`before`: {e}"))?,
            ),
            _ => None,
        };
        let after = match wire.after {
            Side::Object => Some(
                self.image(text, after_spans, hints, false, false)
                    .map_err(|e| format!("`after`: {e}"))?,
            ),
            _ => None,
        };
        let key = match key {
            Some(key) if op == Op::Delete && before.is_none() => {
                self.key_image(key, before_spans)?
            }
            _ => None,
        };
        let needs_after = matches!(op, Op::Read | Op::Create | Op::Update);
        if needs_after && after.is_none() {
            return Err(format!("op {op:?} without an `after` image"));
        }
        if op == Op::Delete && before.is_none() && key.is_none() {
            return Err("delete without a `before` image or a key".into());
        }
        let mut push = |cells: Option<Cells<'_>>| {
            cells
                .map(|cells| self.push(cells))
                .transpose()
                .map_err(|e| e.to_string())
        };
        Ok(Some(Event {
            op,
            before: push(before)?,
            after: push(after)?,
            key: push(key)?,
            position: wire.position.unwrap_or_else(position::no_source),
        }))
    }

    fn push(&mut self, cells: Cells<'_>) -> Result<Image> {
        let mut unavailable = Vec::new();
        let row = self.images.push(cells, &mut unavailable)?;
        Ok(Image { row, unavailable })
    }

    /// The images decoded since the last call; [`Image::row`] indexes their rows.
    pub fn finish(&mut self) -> Result<Images> {
        self.images.finish()
    }

    fn hints_for(&mut self, raw: &[u8]) -> Result<Arc<Vec<Option<FieldHint>>>, String> {
        let id = foldhash::fast::FixedState::default().hash_one(raw);
        if let Some(hints) = self.hints.get(&id) {
            return Ok(Arc::clone(hints));
        }
        let text = std::str::from_utf8(raw).map_err(|e| format!("schema is not UTF-8: {e}"))?;
        let hints = Arc::new(inline_schema::resolve(text, &self.table, &self.columns)?);
        self.hints.insert(id, Arc::clone(&hints));
        Ok(hints)
    }

    /// One image's cells from its columns' spans in `text`. A `partial` image may lack
    /// columns (they are null); a `key_only` one is read for its primary key alone.
    fn image<'a>(
        &self,
        text: &'a [u8],
        spans: &[Span],
        hints: Option<&[Option<FieldHint>]>,
        partial: bool,
        key_only: bool,
    ) -> Result<Cells<'a>, String> {
        let mut cells = Cells::with_capacity(self.columns.len());
        for (pos, (&i, span)) in self.columns.iter().zip(spans).enumerate() {
            let column = &self.table.columns[i];
            if key_only && !self.key_positions.contains(&pos) {
                cells.push(Cell::Null);
                continue;
            }
            let hint = hints.and_then(|h| h.get(pos)).and_then(Option::as_ref);
            cells.push(match span {
                Some((start, end)) => {
                    let cell =
                        cells::decode(&text[*start..*end], &column.data_type, hint, &self.options)
                            .map_err(|e| format!("column `{}`: {e}", column.name))?;
                    if let (Some(guard), Cell::Scalar(value)) = (&self.guards[pos], &cell) {
                        guard
                            .check(value)
                            .map_err(|e| format!("column `{}`: {e}", column.name))?;
                    }
                    cell
                }
                None if column.nullable || partial => Cell::Null,
                None => return Err(format!("column `{}` is missing", column.name)),
            });
        }
        Ok(cells)
    }

    /// The Kafka key (`{"id": …}`, or that under `payload`) as a partial image, used when a
    /// delete comes without `before`; `None` when the key is not such an object.
    fn key_image<'a>(
        &self,
        key: &'a [u8],
        spans: &mut [Span],
    ) -> Result<Option<Cells<'a>>, String> {
        let mut payload = None;
        let scanned = Scanner::new(key).and_then(|mut scanner| {
            scanner.object(|s, name, _| {
                let value = s.value()?;
                if name == b"payload" {
                    payload = Some(value);
                }
                Ok(())
            })
        });
        if scanned.is_err() {
            return Ok(None);
        }
        let fields = payload.unwrap_or(key);
        if Scanner::new(fields)
            .and_then(|mut s| scan_image(&mut s, &self.names, spans))
            .is_err()
        {
            return Ok(None);
        }
        let key_only = !self.key_positions.is_empty();
        self.image(fields, spans, None, true, key_only).map(Some)
    }
}

fn is_json_null(bytes: &[u8]) -> bool {
    bytes.trim_ascii() == b"null" || bytes.trim_ascii().is_empty()
}
