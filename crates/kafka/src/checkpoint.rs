//! A job's checkpoint: the engine snapshot and the source offsets it covers, in one file.
//!
//! The two must never disagree, so they share a file that is replaced atomically: written
//! beside the old one, synced, then renamed over it (and the directory synced), so a crash
//! at any point leaves either the old checkpoint or the new one, whole.
//!
//! Beside it, [`BatchLog`] records where each batch since the checkpoint ended, so that a
//! replay after a crash can apply the same batches (see [`crate::job`]).
//!
//! File layout: `EDDYCKP1`, a little-endian `u32` length and that many bytes of JSON
//! [`CheckpointMeta`], the engine snapshot, and a CRC32 of everything before it.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::source::Offsets;

const MAGIC: &[u8; 8] = b"EDDYCKP1";
const FILE_NAME: &str = "checkpoint";
const BATCH_LOG: &str = "batches";

/// What a checkpoint says besides the engine's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// The next offset to read per input partition.
    pub offsets: Offsets,
    /// When it was taken, in milliseconds since the Unix epoch.
    pub taken_at_ms: u64,
    /// Records read and result messages published up to it, over the job's whole life.
    pub records_in: u64,
    pub records_out: u64,
    /// The job's other counters up to it (absent from checkpoints older than them).
    #[serde(default)]
    pub dead_letters: u64,
    #[serde(default)]
    pub dead_letter_failures: u64,
    #[serde(default)]
    pub poison_pills: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub meta: CheckpointMeta,
    pub snapshot: Vec<u8>,
}

/// Where one job's checkpoint lives.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    dir: PathBuf,
}

impl CheckpointStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        CheckpointStore { dir: dir.into() }
    }

    fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    fn error(path: &Path, detail: impl ToString) -> Error {
        Error::Checkpoint {
            path: path.display().to_string(),
            detail: detail.to_string(),
        }
    }

    /// The latest checkpoint, or `None` if the job has none yet.
    pub fn load(&self) -> Result<Option<Checkpoint>> {
        let path = self.path();
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Self::error(&path, e)),
        };
        decode(&bytes).map(Some).map_err(|e| Self::error(&path, e))
    }

    /// Replaces the checkpoint atomically; durable when this returns.
    pub fn save(&self, checkpoint: &Checkpoint) -> Result<()> {
        let path = self.path();
        let fail = |e: std::io::Error| Self::error(&path, e);
        fs::create_dir_all(&self.dir).map_err(fail)?;
        let temporary = self.dir.join(format!("{FILE_NAME}.tmp"));
        let mut file = File::create(&temporary).map_err(fail)?;
        file.write_all(&encode(checkpoint)).map_err(fail)?;
        file.sync_all().map_err(fail)?;
        drop(file);
        fs::rename(&temporary, &path).map_err(fail)?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(fail)
    }
}

/// The end positions of the batches applied since the last checkpoint, one JSON line each.
///
/// A line is written before the batch's results are published, and is not synced: it
/// survives the process being killed (the kernel holds it), which is the failure replay
/// guards against.
#[derive(Debug)]
pub struct BatchLog {
    path: PathBuf,
    file: Option<File>,
}

impl BatchLog {
    pub fn new(dir: &Path) -> Self {
        BatchLog {
            path: dir.join(BATCH_LOG),
            file: None,
        }
    }

    fn error(&self, detail: impl ToString) -> Error {
        CheckpointStore::error(&self.path, detail)
    }

    /// The recorded batch ends, oldest first. A torn last line (a crash while writing it)
    /// is ignored: its batch's results were not published yet.
    pub fn read(&self) -> Result<Vec<Offsets>> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.error(e)),
        };
        Ok(text
            .lines()
            .map_while(|line| serde_json::from_str(line).ok())
            .collect())
    }

    pub fn append(&mut self, end: &Offsets) -> Result<()> {
        if self.file.is_none() {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(|e| self.error(e))?;
            self.file = Some(file);
        }
        let mut line = serde_json::to_vec(end).expect("offsets are plain data");
        line.push(b'\n');
        let file = self.file.as_mut().expect("opened above");
        file.write_all(&line)
            .map_err(|e| CheckpointStore::error(&self.path, e))
    }

    /// Empties the log: the batches it lists are covered by a new checkpoint.
    pub fn clear(&mut self) -> Result<()> {
        self.file = None;
        File::create(&self.path)
            .map(drop)
            .map_err(|e| self.error(e))
    }
}

fn encode(checkpoint: &Checkpoint) -> Vec<u8> {
    let meta = serde_json::to_vec(&checkpoint.meta).expect("checkpoint metadata is plain data");
    let mut bytes =
        Vec::with_capacity(MAGIC.len() + 4 + meta.len() + checkpoint.snapshot.len() + 4);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&meta);
    bytes.extend_from_slice(&checkpoint.snapshot);
    let checksum = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&checksum.to_le_bytes());
    bytes
}

fn decode(bytes: &[u8]) -> Result<Checkpoint, String> {
    let (body, checksum) = bytes.split_last_chunk::<4>().ok_or("truncated")?;
    if crc32fast::hash(body) != u32::from_le_bytes(*checksum) {
        return Err("checksum mismatch: the file is damaged".into());
    }
    let rest = body.strip_prefix(MAGIC).ok_or("not an Eddy checkpoint")?;
    let (length, rest) = rest.split_first_chunk::<4>().ok_or("truncated")?;
    let length = u32::from_le_bytes(*length) as usize;
    if rest.len() < length {
        return Err("truncated".into());
    }
    let (meta, snapshot) = rest.split_at(length);
    let meta = serde_json::from_slice(meta).map_err(|e| format!("metadata: {e}"))?;
    Ok(Checkpoint {
        meta,
        snapshot: snapshot.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        let mut offsets = Offsets::new();
        offsets
            .entry("app.public.orders".into())
            .or_default()
            .insert(0, 42);
        Checkpoint {
            meta: CheckpointMeta {
                offsets,
                taken_at_ms: 1,
                records_in: 42,
                records_out: 7,
                ..CheckpointMeta::default()
            },
            snapshot: vec![1, 2, 3],
        }
    }

    #[test]
    fn saved_checkpoint_loads_back_equal_and_replaces_the_previous() {
        let dir = std::env::temp_dir().join(format!("eddy-ckpt-{}", std::process::id()));
        let store = CheckpointStore::new(&dir);
        assert_eq!(store.load().unwrap(), None);
        store.save(&sample()).unwrap();
        let mut next = sample();
        next.meta.records_in = 43;
        store.save(&next).unwrap();
        assert_eq!(store.load().unwrap(), Some(next));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn batch_log_reads_back_its_lines_and_ignores_a_torn_one() {
        let dir = std::env::temp_dir().join(format!("eddy-batches-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let mut log = BatchLog::new(&dir);
        let end = sample().meta.offsets;
        log.append(&end).unwrap();
        log.append(&end).unwrap();
        fs::OpenOptions::new()
            .append(true)
            .open(dir.join(BATCH_LOG))
            .unwrap()
            .write_all(b"{\"app")
            .unwrap();
        assert_eq!(log.read().unwrap(), vec![end.clone(), end]);
        log.clear().unwrap();
        assert!(log.read().unwrap().is_empty());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn damaged_checkpoint_is_an_error_not_a_silent_restart() {
        let mut bytes = encode(&sample());
        bytes[12] ^= 0xff;
        assert!(decode(&bytes).unwrap_err().contains("checksum"));
        assert!(decode(&bytes[..3]).is_err());
    }
}
