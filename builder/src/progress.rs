//! Progress bars for a build: bytes downloaded and packages done, drawn with
//! indicatif on stderr. When stderr is not a terminal (logs, CI) there are
//! no bars and no escape sequences, but each stage still prints one plain
//! line as it starts, so a log shows where a build is; `--quiet` prints
//! nothing.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The build's two bars; implements the cache's [`vbuild_cache::Progress`]
/// so downloads move them directly.
pub struct BuildProgress {
    multi: MultiProgress,
    bytes: ProgressBar,
    items: ProgressBar,
    /// Stage lines on stderr without bars (not a terminal, not quiet).
    plain: bool,
    /// Whether the download bar joined the display yet.
    bytes_shown: AtomicBool,
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
        // Shown from the first download on (see `begin`): no empty bar.
        let bytes = ProgressBar::new(0);
        bytes.set_style(
            ProgressStyle::with_template(
                "{prefix:>10} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bytes.set_prefix("download");
        let items = multi.add(ProgressBar::new(0));
        items.set_style(
            ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} {wide_msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        items.set_prefix("packages");
        BuildProgress {
            multi,
            bytes,
            items,
            plain,
            bytes_shown: AtomicBool::new(false),
        }
    }

    /// Starts a new counted stage on the package bar (e.g. "unpack", n).
    pub fn stage(&self, label: &str, items: u64) {
        self.items.set_prefix(label.to_string());
        self.items.set_length(items);
        self.items.set_position(0);
        self.items.set_message("");
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
        self.bytes.position()
    }

    /// Items counted so far in the current stage.
    pub fn items_done(&self) -> u64 {
        self.items.position()
    }

    /// Removes the bars from the terminal.
    pub fn finish(&self) {
        self.bytes.finish_and_clear();
        self.items.finish_and_clear();
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
        self.bytes.set_length(bytes);
        self.bytes.set_position(0);
        self.bytes.reset_eta();
        if !self.bytes_shown.swap(true, Ordering::Relaxed) {
            self.multi.insert(0, self.bytes.clone());
        }
        self.stage("download", items);
    }

    fn advance(&self, bytes: u64) {
        self.bytes.inc(bytes);
    }

    fn item_done(&self, name: &str) {
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
}
