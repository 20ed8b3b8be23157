//! The progress bar (on a terminal only) and the counts the summary reports.

use std::io::{BufRead, IsTerminal};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Lines in the file, counted in one quick pass for the bar's length.
pub fn count_lines(reader: &mut impl BufRead) -> std::io::Result<u64> {
    let mut lines = 0;
    let mut last = b'\n';
    loop {
        let buffer = reader.fill_buf()?;
        let Some(&end) = buffer.last() else { break };
        lines += buffer.iter().filter(|&&b| b == b'\n').count() as u64;
        last = end;
        let used = buffer.len();
        reader.consume(used);
    }
    Ok(lines + u64::from(last != b'\n'))
}

/// A bar of lines handled, with records per second and the time left; hidden when standard
/// error is not a terminal.
pub fn bar(total: u64, done: u64) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr_with_hz(4)
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(total), target);
    let style = ProgressStyle::with_template("{wide_bar} {human_pos}/{human_len} lines  {per_sec}  ETA {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    // The rate and ETA count from here, not from lines skipped on resumption.
    bar.set_position(done);
    bar.reset_eta();
    bar
}

/// What this run did, for the summary.
#[derive(Debug, Default)]
pub struct Counts {
    pub created: u64,
    pub refused: u64,
    pub duplicates: u64,
    pub skipped: u64,
    /// App records created.
    pub apps: u64,
    /// App records found written already (by an interrupted run), with the same data.
    pub apps_existing: u64,
}

impl Counts {
    /// The summary line.
    pub fn summary(&self, started: Instant) -> String {
        let elapsed = started.elapsed().max(Duration::from_millis(1));
        let rate = (self.created + self.refused) as f64 / elapsed.as_secs_f64();
        let mut summary = format!(
            "created {}, refused {} ({} as duplicates), skipped {} lines (done before), in {:.1}s, {:.0} records/s",
            self.created,
            self.refused,
            self.duplicates,
            self.skipped,
            elapsed.as_secs_f64(),
            rate
        );
        if self.apps + self.apps_existing > 0 {
            summary.push_str(&format!("; app records: {} written, {} there already", self.apps, self.apps_existing));
        }
        summary
    }
}
