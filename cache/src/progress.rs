//! How the cache reports download progress without knowing how it is drawn.

/// Receives progress from [`crate::Cache::fetch_all`] and [`crate::Cache::fetch`];
/// the builder implements it with progress bars, tests count with it.
/// Called from worker threads, hence `Sync`.
pub trait Progress: Sync {
    /// A batch starts: `items` blobs, `bytes` in all (0 when sizes are unknown).
    fn begin(&self, items: u64, bytes: u64) {
        let _ = (items, bytes);
    }
    /// `bytes` more arrived (or were found in the cache).
    fn advance(&self, bytes: u64) {
        let _ = bytes;
    }
    /// One blob is complete and verified; `name` is the last part of its URL.
    fn item_done(&self, name: &str) {
        let _ = name;
    }
    /// One blob of `bytes` was in the store already: nothing is downloaded
    /// for it (a display shows no transfer for it). By default counted as
    /// arrived and done.
    fn cached(&self, bytes: u64, name: &str) {
        self.advance(bytes);
        self.item_done(name);
    }
}

/// Progress that goes nowhere, for callers that do not draw anything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}
