//! A bounded per-pipeline log buffer with a scroll position, so memory and render cost stay flat however much Sling
//! prints.

use std::collections::VecDeque;

use crate::sync::sling_log::Level;

/// Lines kept per pipeline; older lines are evicted and counted as dropped.
pub const LOG_CAPACITY: usize = 2000;

/// One line of the log pane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub level: Level,
    /// `HH:MM:SS` taken from Sling's own timestamp, when it printed one.
    pub time: Option<String>,
    pub text: String,
    /// A line the console wrote itself (run started, finished, check results), shown apart from Sling's output.
    pub marker: bool,
}

impl LogEntry {
    pub fn marker(text: impl Into<String>) -> Self {
        Self {
            level: Level::Info,
            time: None,
            text: text.into(),
            marker: true,
        }
    }
}

/// The lines of one pipeline. `scroll` counts lines up from the tail; 0 follows the tail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogBuffer {
    lines: VecDeque<LogEntry>,
    capacity: usize,
    /// Lines lost: evicted from this buffer plus those the event channel dropped (`SyncEvent::LinesDropped`).
    pub dropped: u64,
    scroll: usize,
}

impl Default for LogBuffer {
    fn default() -> Self {
        Self::with_capacity(LOG_CAPACITY)
    }
}

impl LogBuffer {
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            lines: VecDeque::with_capacity(capacity.min(256)),
            capacity,
            dropped: 0,
            scroll: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    pub fn scroll(&self) -> usize {
        self.scroll
    }

    pub fn following(&self) -> bool {
        self.scroll == 0
    }

    pub fn push(&mut self, entry: LogEntry) {
        if self.lines.len() == self.capacity {
            self.lines.pop_front();
            self.dropped += 1;
        }
        self.lines.push_back(entry);
        // A scrolled-back view stays on the same lines while new ones arrive below it.
        if self.scroll > 0 {
            self.scroll = (self.scroll + 1).min(self.lines.len().saturating_sub(1));
        }
    }

    /// Moves the view up by `n` lines; `rows` is the pane height, so the view never runs past the first line.
    pub fn scroll_up(&mut self, n: usize, rows: usize) {
        self.scroll = (self.scroll + n).min(self.max_scroll(rows));
    }

    pub fn scroll_down(&mut self, n: usize) {
        self.scroll = self.scroll.saturating_sub(n);
    }

    pub fn top(&mut self, rows: usize) {
        self.scroll = self.max_scroll(rows);
    }

    pub fn follow(&mut self) {
        self.scroll = 0;
    }

    fn max_scroll(&self, rows: usize) -> usize {
        self.lines.len().saturating_sub(rows.max(1))
    }

    /// The lines visible in a pane of `rows` lines: only these are ever formatted.
    pub fn window(&self, rows: usize) -> impl Iterator<Item = &LogEntry> {
        let len = self.lines.len();
        let end = len.saturating_sub(self.scroll).max(rows.min(len));
        let start = end.saturating_sub(rows);
        self.lines.range(start..end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(n: usize) -> LogEntry {
        LogEntry {
            level: Level::Info,
            time: None,
            text: n.to_string(),
            marker: false,
        }
    }

    fn texts<'a>(it: impl Iterator<Item = &'a LogEntry>) -> Vec<String> {
        it.map(|e| e.text.clone()).collect()
    }

    #[test]
    fn evicts_and_counts() {
        let mut b = LogBuffer::with_capacity(3);
        (0..5).for_each(|n| b.push(line(n)));
        assert_eq!(b.len(), 3);
        assert_eq!(b.dropped, 2);
        assert_eq!(texts(b.window(10)), ["2", "3", "4"]);
    }

    #[test]
    fn scrolled_view_stays_put_and_clamps() {
        let mut b = LogBuffer::with_capacity(100);
        (0..10).for_each(|n| b.push(line(n)));
        b.scroll_up(3, 2);
        assert_eq!(texts(b.window(2)), ["5", "6"]);
        b.push(line(10));
        assert_eq!(texts(b.window(2)), ["5", "6"]);
        b.top(2);
        assert_eq!(texts(b.window(2)), ["0", "1"]);
        b.follow();
        assert_eq!(texts(b.window(2)), ["9", "10"]);
    }
}
