//! Reading Sling's pipes: whole lines in batches (one allocation per read), long lines capped, progress ticks taken
//! out of stderr's unfinished line as they arrive, and a short pause after small reads so a flood is read in bulk.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;

use super::super::sling_log::{self, Pipe, Progress};
#[cfg(test)]
use super::MAX_LINE_BYTES;

/// How much one read of a pipe takes at most.
const READ_BYTES: usize = 64 * 1024;
/// A read with fewer lines and fewer bytes than these is followed by `COALESCE_PAUSE` before the next read.
const COALESCE_BELOW_LINES: usize = 64;
const COALESCE_BELOW_BYTES: usize = READ_BYTES / 4;
/// Batches in flight between the pipe readers and the engine. Small, so that when the engine waits (a slow
/// stdout) the readers soon stop reading and Sling waits too, instead of lines piling up here.
pub(super) const BATCHES_IN_FLIGHT: usize = 4;
const COALESCE_PAUSE: Duration = Duration::from_millis(2);

/// The room `widen_pipe` asks for: 1 MiB, the default /proc/sys/fs/pipe-max-size.
pub(super) const PIPE_BYTES: usize = 1 << 20;

/// Gives one of Sling's pipes `PIPE_BYTES` of room instead of Linux's 64 KiB (best effort: a lower
/// pipe-max-size leaves it as it was). A burst of output, above all long lines, then costs a few large writes for
/// Sling instead of a hand-over between Sling and the reader every 64 KiB: 100 lines of 1 MiB went from ~0.8–1.1×
/// to ~0.6–0.7× the stand-in's own time. Bounded: it is still a pipe, and a waiting engine still stops Sling.
pub(super) fn widen_pipe(pipe: &impl std::os::fd::AsFd) {
    let bytes = i32::try_from(PIPE_BYTES).unwrap_or(i32::MAX);
    let _ = nix::fcntl::fcntl(pipe, nix::fcntl::FcntlArg::F_SETPIPE_SZ(bytes));
}

/// Complete lines of one read, each ending in `\n`: one allocation per read, not per line.
pub(super) struct Batch {
    pub(super) pipe: Pipe,
    text: String,
}

impl Batch {
    pub(super) fn lines(&self) -> impl Iterator<Item = &str> {
        self.text.split_terminator('\n')
    }
}

/// What the pipe readers hand to the attempt loop.
pub(super) enum Piped {
    Lines(Batch),
    /// The newest `SLING_SHOW_PROGRESS` tick, read from stderr before its line ends.
    Progress(Progress),
}

/// Reads `reader` line by line, each line capped at `max_line_bytes`, and forwards raw text to `tx` — every
/// complete line of one read as one batch, so a burst of output costs one wake-up of the engine, not one per line.
/// On stderr, progress ticks are taken out of the unfinished line as they arrive (Sling ends that line only when
/// the stream ends).
pub(super) async fn pump<R: AsyncRead + Unpin>(
    reader: R,
    pipe: Pipe,
    max_line_bytes: usize,
    tx: mpsc::Sender<Piped>,
) {
    let mut reader = BufReader::with_capacity(READ_BYTES, reader);
    // The line being read, carried over between reads until its newline comes.
    let mut line: Vec<u8> = Vec::with_capacity(256);
    let mut overflow = false;
    while let Ok(buf) = reader.fill_buf().await {
        if buf.is_empty() {
            break;
        }
        let mut batch: Vec<u8> = Vec::new();
        let mut lines = 0usize;
        let mut rest = buf;
        while !rest.is_empty() {
            // memchr, not a byte loop: every byte Sling prints passes here, and a long line is scanned to its end
            // even when most of it is cut off.
            let (chunk, found_newline) = match memchr::memchr(b'\n', rest) {
                Some(i) => (&rest[..i], true),
                None => (rest, false),
            };
            rest = &rest[chunk.len() + usize::from(found_newline)..];
            if !found_newline {
                let room = max_line_bytes.saturating_sub(line.len());
                overflow |= chunk.len() > room;
                line.extend_from_slice(&chunk[..chunk.len().min(room)]);
                break;
            }
            if batch.is_empty() {
                batch.reserve(buf.len() + line.len());
            }
            // The start carried over from earlier reads, then this read's part, capped together.
            let room = max_line_bytes.saturating_sub(line.len());
            batch.extend_from_slice(&line);
            batch.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if overflow || chunk.len() > room {
                batch.extend_from_slice(" …[line truncated]".as_bytes());
            }
            batch.push(b'\n');
            line.clear();
            overflow = false;
            lines += 1;
        }
        let consumed = buf.len();
        reader.consume(consumed);
        // A chatty child writes one line per write(2); reading each as it comes costs a wake-up per line. A short
        // pause after a small read lets lines pile up in the pipe, so a flood is read in large batches. Logs are
        // not latency-critical; 2 ms is invisible to an operator and far below the pipe's room (`PIPE_BYTES`). A read
        // that brought many bytes (long lines) is not small: pausing there would only slow the child down.
        let small = lines < COALESCE_BELOW_LINES && consumed < COALESCE_BELOW_BYTES;
        if lines > 0 {
            let text = String::from_utf8(batch)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            if tx.send(Piped::Lines(Batch { pipe, text })).await.is_err() {
                return;
            }
        }
        if pipe == Pipe::Stderr && line.first().is_some_and(u8::is_ascii_digit) {
            if let Some((used, p)) = sling_log::parse_progress(&String::from_utf8_lossy(&line)) {
                // The ticks are ASCII, so `used` counts bytes of `line` too.
                line.drain(..used.min(line.len()));
                if tx.send(Piped::Progress(p)).await.is_err() {
                    return;
                }
            }
        }
        if small {
            tokio::time::sleep(COALESCE_PAUSE).await;
        }
    }
    if !line.is_empty() {
        let mut text = String::from_utf8_lossy(&line).into_owned();
        text.push('\n');
        let _ = tx.send(Piped::Lines(Batch { pipe, text })).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::ReadBuf;

    /// Hands out its bytes a few at a time, as a pipe does when the writer is slow.
    struct Chunked {
        data: Vec<u8>,
        at: usize,
        step: usize,
    }

    impl AsyncRead for Chunked {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            let end = (self.at + self.step)
                .min(self.data.len())
                .min(self.at + buf.remaining());
            buf.put_slice(&self.data[self.at..end]);
            self.at = end;
            Poll::Ready(Ok(()))
        }
    }

    async fn lines_of(data: Vec<u8>, step: usize) -> Vec<String> {
        let (tx, mut rx) = mpsc::channel(BATCHES_IN_FLIGHT);
        tokio::spawn(pump(
            Chunked { data, at: 0, step },
            Pipe::Stdout,
            MAX_LINE_BYTES,
            tx,
        ));
        let mut out = Vec::new();
        while let Some(piped) = rx.recv().await {
            let Piped::Lines(b) = piped else {
                panic!("stdout carries no progress ticks")
            };
            assert!(b.text.ends_with('\n'), "a batch holds whole lines");
            out.extend(b.lines().map(str::to_owned));
        }
        out
    }

    #[test]
    fn pipes_get_a_mebibyte_of_room() {
        let (read, write) = nix::unistd::pipe().expect("a pipe");
        let size = |fd: &std::os::fd::OwnedFd| {
            nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETPIPE_SZ).expect("F_GETPIPE_SZ")
        };
        assert_eq!(size(&read), 64 * 1024, "Linux's default");
        widen_pipe(&read);
        assert_eq!(usize::try_from(size(&write)).ok(), Some(PIPE_BYTES));
    }

    #[tokio::test]
    async fn lines_survive_any_read_size_and_long_ones_are_capped() {
        let long = "x".repeat(MAX_LINE_BYTES + 10);
        let mut data = format!("first\nsecond line\n{long}\nafter\n").into_bytes();
        data.extend_from_slice(b"bad \xff byte\nno newline at the end");
        // (Every small read is followed by the coalescing pause: read sizes that keep this test quick.)
        for step in [3000, 4096, READ_BYTES] {
            let got = lines_of(data.clone(), step).await;
            assert_eq!(got.len(), 6, "step {step}: {got:?}");
            assert_eq!(got[0], "first");
            assert_eq!(got[1], "second line");
            assert_eq!(
                got[2],
                format!("{} …[line truncated]", "x".repeat(MAX_LINE_BYTES))
            );
            assert_eq!(got[3], "after");
            assert_eq!(got[4], "bad \u{fffd} byte");
            assert_eq!(got[5], "no newline at the end");
        }
        let got = lines_of(b"a\nbc\n\nd".to_vec(), 1).await;
        assert_eq!(got, ["a", "bc", "", "d"]);
    }
}
