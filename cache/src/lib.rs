//! vbuild-cache: a content-addressed store of downloads shared by every build.
//!
//! Blobs live at `DIR/blobs/sha256/ab/abcdef…` and are trusted by name: a file
//! only gets there after its size and SHA-256 matched what the caller expected
//! (the caller took those from a signed index), and it arrives by an atomic
//! rename, so readers never see half a file. Downloads run in parallel worker
//! threads, retry connection failures and 5xx answers with backoff, and resume
//! an interrupted `.partial` with an HTTP `Range` request. Concurrent builds
//! share the store safely: a per-blob `flock` serialises the download of one
//! blob, a store-wide shared lock keeps [`Cache::gc`] out while anyone fetches.
//!
//! Small mutable files (a mirror's last good `InRelease`) are kept by key in
//! an index store so that an `--offline` build can start from them. The cache
//! knows nothing about distributions: callers hand it URLs and digests.

pub mod dedupe;
mod error;
mod fetch;
mod gc;
mod http;
mod index;
pub mod inventory;
mod lock;
mod parallel;
mod progress;
mod store;
pub mod templates;

pub use error::CacheError;
pub use gc::GcStats;
pub use progress::{NoProgress, Progress};
pub use store::{Cache, Fetch, DEFAULT_JOBS};
