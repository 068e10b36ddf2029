//! Progress bars for a build: bytes downloaded and packages done, drawn with
//! indicatif on stderr. Hidden when quiet or when stderr is not a terminal
//! (logs and CI get no escape sequences).

use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The build's two bars; implements the cache's [`vbuild_cache::Progress`]
/// so downloads move them directly.
pub struct BuildProgress {
    multi: MultiProgress,
    bytes: ProgressBar,
    items: ProgressBar,
}

impl BuildProgress {
    /// Bars on stderr, unless `quiet` or stderr is not a terminal.
    pub fn new(quiet: bool) -> BuildProgress {
        let target = if quiet || !std::io::stderr().is_terminal() {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        BuildProgress::with_target(target)
    }

    /// Bars that draw nothing but still count (tests, `--quiet`).
    pub fn hidden() -> BuildProgress {
        BuildProgress::with_target(ProgressDrawTarget::hidden())
    }

    fn with_target(target: ProgressDrawTarget) -> BuildProgress {
        let multi = MultiProgress::with_draw_target(target);
        let bytes = multi.add(ProgressBar::new(0));
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
        }
    }

    /// Starts a new counted stage on the package bar (e.g. "unpack", n).
    pub fn stage(&self, label: &str, items: u64) {
        self.items.set_prefix(label.to_string());
        self.items.set_length(items);
        self.items.set_position(0);
        self.items.set_message("");
    }

    /// Counts one item of the current stage done, showing its name.
    pub fn step(&self, name: &str) {
        self.items.inc(1);
        self.items.set_message(name.to_string());
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

impl vbuild_cache::Progress for BuildProgress {
    fn begin(&self, items: u64, bytes: u64) {
        self.bytes.set_length(bytes);
        self.bytes.set_position(0);
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
}
