//! Differential test: random changelogs, folded Eddy output vs DataFusion in batch.
