//! Progress bars for a build: bytes downloaded and packages done, drawn with
//! indicatif on stderr. When stderr is not a terminal (logs, CI) there are
//! no bars and no escape sequences, but each stage still prints one plain
//! line as it starts, so a log shows where a build is; `--quiet` prints
//! nothing.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The display of the build drawing now, for lines said by code that has
/// no handle on it ([`say`]).
static DRAWING: Mutex<Option<MultiProgress>> = Mutex::new(None);

/// Prints a line for the user on stderr: above the bars while a build
/// draws them (a plain `eprintln!` would land inside the bars and leave
/// a torn bar on the screen), plainly otherwise.
pub fn say(line: &str) {
    match DRAWING.lock().unwrap().as_ref() {
        Some(multi) => {
            let _ = multi.println(line);
        }
        None => eprintln!("{line}"),
    }
}

/// The package bar before a stage starts: what the build does, no count.
fn note_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:>10} {wide_msg}").expect("valid template")
}

/// The package bar in a stage: its items done of its total.
fn count_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} {wide_msg}")
        .expect("valid template")
        .progress_chars("=> ")
}

/// The build's two bars; implements the cache's [`vbuild_cache::Progress`]
/// so downloads move them directly.
///
/// The download bar is on the display only while bytes really arrive: a
/// build whose packages all come from the cache never shows one (no
/// "eta" for a transfer that is not happening), and the bar leaves the
/// display as soon as the next stage starts, so a bar last drawn halfway
/// (indicatif draws at most 20 times a second) is never left standing.
pub struct BuildProgress {
    multi: MultiProgress,
    /// The download bar while it is shown.
    bytes: Mutex<Option<ProgressBar>>,
    /// Bytes of the current download batch, in all (0: sizes unknown).
    bytes_total: AtomicU64,
    /// Bytes counted so far (downloaded or found in the cache).
    bytes_done: AtomicU64,
    items: ProgressBar,
    /// Stage lines on stderr without bars (not a terminal, not quiet).
    plain: bool,
}

impl BuildProgress {
    /// Bars on stderr, unless `quiet` or stderr is not a terminal.
    pub fn new(quiet: bool) -> BuildProgress {
        let tty = std::io::stderr().is_terminal();
        let target = if quiet || !tty {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        BuildProgress::with_target(target, !quiet && !tty)
    }

    /// Bars that draw nothing but still count (tests, `--quiet`).
    pub fn hidden() -> BuildProgress {
        BuildProgress::with_target(ProgressDrawTarget::hidden(), false)
    }

    fn with_target(target: ProgressDrawTarget, plain: bool) -> BuildProgress {
        let multi = MultiProgress::with_draw_target(target);
        if !multi.is_hidden() {
            *DRAWING.lock().unwrap() = Some(multi.clone());
        }
        let items = multi.add(ProgressBar::new(0));
        // No "0/0" before there is anything to count.
        items.set_style(note_style());
        items.set_prefix("build");
        BuildProgress {
            multi,
            bytes: Mutex::new(None),
            bytes_total: AtomicU64::new(0),
            bytes_done: AtomicU64::new(0),
            items,
            plain,
        }
    }

    /// Starts a new counted stage on the package bar (e.g. "unpack", n);
    /// the download bar, if shown, leaves the display.
    pub fn stage(&self, label: &str, items: u64) {
        self.end_download();
        // Position first: every frame drawn on the way (each change may
        // draw one) stays within its total, never the last stage's count
        // over the new one's total.
        self.items.set_position(0);
        self.items.set_length(items);
        self.items.set_message("");
        self.items.set_style(count_style());
        self.items.set_prefix(label.to_string());
        if self.plain {
            eprintln!("{label}: {items}");
        }
    }

    /// Counts one item of the current stage done, showing its name. Never
    /// counts past the stage's total: an item the stage did not announce
    /// is shown, not counted.
    pub fn step(&self, name: &str) {
        if self.items.position() < self.items.length().unwrap_or(0) {
            self.items.inc(1);
        }
        self.items.set_message(name.to_string());
    }

    /// Says what the build is doing now (a step that is not one of the
    /// stage's counted items: "verifying the indices", "tailoring").
    pub fn note(&self, what: &str) {
        self.end_download();
        self.items.set_message(what.to_string());
        if self.plain {
            eprintln!("{what}");
        }
    }

    /// Shows what the current item is doing (a maintainer script) without
    /// counting it or printing a plain line for it.
    pub fn detail(&self, what: &str) {
        self.items.set_message(what.to_string());
    }

    /// Prints a line above the bars (or plainly when they are hidden).
    pub fn println(&self, line: &str) {
        if self.multi.is_hidden() {
            eprintln!("{line}");
        } else {
            let _ = self.multi.println(line);
        }
    }

    /// Bytes counted so far (for the closing summary and tests).
    pub fn bytes_done(&self) -> u64 {
        self.bytes_done.load(Ordering::Relaxed)
    }

    /// Items counted so far in the current stage.
    pub fn items_done(&self) -> u64 {
        self.items.position()
    }

    /// Whether the download bar is on the display now.
    pub fn download_shown(&self) -> bool {
        self.bytes.lock().unwrap().is_some()
    }

    /// Removes the bars from the terminal; lines said from now on are
    /// plain again.
    pub fn finish(&self) {
        self.end_download();
        self.items.finish_and_clear();
        let mut drawing = DRAWING.lock().unwrap();
        if drawing.is_some() && !self.multi.is_hidden() {
            *drawing = None;
        }
    }

    /// Takes the download bar off the display (it is made anew should
    /// another batch download).
    fn end_download(&self) {
        if let Some(bar) = self.bytes.lock().unwrap().take() {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
    }

    /// The download bar for the current batch, drawn from the bytes
    /// counted so far (those found in the cache included).
    fn download_bar(&self) -> ProgressBar {
        let total = self.bytes_total.load(Ordering::Relaxed);
        // Made hidden and only then handed to the display: a bar drawn on
        // its own (stderr) before joining it would stay behind as a line
        // the display does not know and never clears.
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
        let template = if total > 0 {
            "{prefix:>10} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}"
        } else {
            // Sizes unknown: no total to count towards, no eta.
            "{prefix:>10} {bytes} {binary_bytes_per_sec}"
        };
        bar.set_style(
            ProgressStyle::with_template(template)
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix("download");
        let done = self.bytes_done();
        bar.set_position(if total > 0 { done.min(total) } else { done });
        bar.reset_eta();
        self.multi.insert(0, bar.clone())
    }
}

/// Moves `bar` on by `bytes`, never past its total (a size the index got
/// wrong shows as a full bar, not as more than all).
fn bump(bar: &ProgressBar, bytes: u64) {
    let next = bar.position().saturating_add(bytes);
    match bar.length().filter(|&l| l > 0) {
        Some(total) => bar.set_position(next.min(total)),
        None => bar.set_position(next),
    }
}

impl Drop for BuildProgress {
    /// A failed build leaves no bar on the terminal either.
    fn drop(&mut self) {
        self.finish();
    }
}

impl vbuild_cache::Progress for BuildProgress {
    fn begin(&self, items: u64, bytes: u64) {
        self.stage("download", items);
        self.bytes_total.store(bytes, Ordering::Relaxed);
        self.bytes_done.store(0, Ordering::Relaxed);
    }

    fn advance(&self, bytes: u64) {
        self.bytes_done.fetch_add(bytes, Ordering::Relaxed);
        let mut shown = self.bytes.lock().unwrap();
        match shown.as_ref() {
            Some(bar) => bump(bar, bytes),
            None => *shown = Some(self.download_bar()),
        }
    }

    fn item_done(&self, name: &str) {
        self.step(name);
    }

    fn cached(&self, bytes: u64, name: &str) {
        self.bytes_done.fetch_add(bytes, Ordering::Relaxed);
        // Counted, not drawn: a batch found whole in the cache shows no
        // download bar at all.
        if let Some(bar) = self.bytes.lock().unwrap().as_ref() {
            bump(bar, bytes);
        }
        self.step(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vbuild_cache::Progress;

    #[test]
    fn hidden_bars_still_count() {
        let p = BuildProgress::hidden();
        p.begin(3, 300);
        p.advance(120);
        p.advance(80);
        p.item_done("a.deb");
        assert_eq!(p.bytes_done(), 200);
        assert_eq!(p.items_done(), 1);
        p.stage("unpack", 3);
        assert_eq!(p.items_done(), 0);
        p.finish();
    }

    #[test]
    fn counts_never_run_past_the_stage_total() {
        let p = BuildProgress::hidden();
        p.note("verifying the repository's indices");
        assert_eq!(p.items_done(), 0, "a note is not an item");
        p.stage("installing", 2);
        for n in ["a", "b", "c", "d"] {
            p.step(n);
            p.detail("postinst a");
        }
        assert_eq!(p.items_done(), 2, "installing 2/2, never 4/2");
    }

    #[test]
    fn a_batch_found_in_the_cache_shows_no_download_bar() {
        let p = BuildProgress::hidden();
        p.begin(2, 300);
        p.cached(100, "a.deb");
        p.cached(200, "b.deb");
        assert!(!p.download_shown(), "nothing is downloading");
        assert_eq!((p.bytes_done(), p.items_done()), (300, 2));
        p.stage("installing", 2);
        assert!(!p.download_shown());
    }

    #[test]
    fn the_download_bar_shows_while_bytes_arrive_and_leaves_with_the_stage() {
        let p = BuildProgress::hidden();
        p.begin(2, 300);
        p.cached(100, "a.deb");
        assert!(!p.download_shown());
        p.advance(150);
        assert!(p.download_shown(), "bytes arrive: the bar shows");
        p.advance(50);
        p.item_done("b.deb");
        assert_eq!(p.bytes_done(), 300);
        p.stage("installing", 2);
        assert!(!p.download_shown(), "the next stage takes it off");
        p.note("tailoring");
        p.finish();
        assert!(!p.download_shown());
    }
}
