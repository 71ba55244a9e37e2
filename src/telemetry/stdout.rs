//! The batch output: formatted lines go into a bounded buffer that one writer thread hands to stdout in large
//! writes, so a flood of Sling lines costs a few `write(2)`s, not one per line.
//!
//! Lossless and bounded. When stdout does not keep up, the buffer fills and the thread that logs waits for the
//! writer: the engine stops reading Sling's pipe, and Sling waits, as it would writing to the slow pipe itself.
//! Memory stays at two buffers whatever the reader's speed. When the output is closed (`StdoutGuard` dropped), every
//! buffered byte is written before the process goes on to exit — however slow the reader. Only a broken stdout
//! (the reader is gone: `EPIPE`) discards output, since nobody can receive it.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// Bytes buffered before the logging thread waits for the writer. Large enough that a flood goes out in big writes,
/// small enough to be invisible in the process's memory.
pub const BUFFER_BYTES: usize = 256 * 1024;
/// After writing less than this, the writer pauses `SMALL_WRITE_PAUSE` so that lines pile up: a flood then costs a
/// `write(2)` (and a wake-up of the reader) per many lines, not per line. Invisible to an operator.
const SMALL_WRITE_BYTES: usize = 16 * 1024;
const SMALL_WRITE_PAUSE: std::time::Duration = std::time::Duration::from_millis(1);

#[derive(Default)]
struct State {
    /// Formatted lines not yet taken by the writer.
    pending: Vec<u8>,
    /// The writer sleeps until `pending` has something (or the output closes).
    writer_idle: bool,
    /// Logging threads wait for the writer to take `pending`.
    producers_waiting: usize,
    closing: bool,
    /// The writer thread has written everything and stopped; late lines are written directly.
    finished: bool,
    /// stdout failed (the reader is gone): further output is discarded instead of waiting for ever.
    broken: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the writer: something to write, or closing.
    to_writer: Condvar,
    /// Wakes logging threads: `pending` was taken (or stdout broke).
    to_producers: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain bytes behind; keep going with them.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lets `f` add one or more whole lines to the output, waiting first while the buffer is full.
    fn add(&self, f: impl FnOnce(&mut Vec<u8>)) {
        let mut st = self.lock();
        while st.pending.len() >= BUFFER_BYTES && !st.broken && !st.closing {
            st.producers_waiting += 1;
            st = self
                .to_producers
                .wait(st)
                .unwrap_or_else(|e| e.into_inner());
            st.producers_waiting -= 1;
        }
        if st.broken {
            return;
        }
        if st.finished {
            // After the guard: nothing is batched any more, so keep the order by writing under the lock.
            let mut line = Vec::new();
            f(&mut line);
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&line).and_then(|()| out.flush());
            return;
        }
        f(&mut st.pending);
        if st.writer_idle && !st.pending.is_empty() {
            st.writer_idle = false;
            self.to_writer.notify_one();
        }
    }

    /// The writer thread: take everything pending, write it with the lock released, repeat.
    fn run_writer(&self, mut out: impl Write) {
        let mut taken = Vec::with_capacity(BUFFER_BYTES);
        loop {
            {
                let mut st = self.lock();
                while st.pending.is_empty() && !st.closing {
                    st.writer_idle = true;
                    st = self.to_writer.wait(st).unwrap_or_else(|e| e.into_inner());
                }
                if st.pending.is_empty() {
                    st.finished = true; // closing, and everything is out
                    return;
                }
                std::mem::swap(&mut st.pending, &mut taken);
                if st.producers_waiting > 0 {
                    self.to_producers.notify_all();
                }
            }
            if out.write_all(&taken).and_then(|()| out.flush()).is_err() {
                let mut st = self.lock();
                st.broken = true;
                st.pending = Vec::new();
                self.to_producers.notify_all();
                return;
            }
            let small = taken.len() < SMALL_WRITE_BYTES;
            taken.clear();
            // A single huge line (or a burst while closing) may have grown the buffer; do not keep it.
            taken.shrink_to(BUFFER_BYTES);
            if small && !self.lock().closing {
                std::thread::sleep(SMALL_WRITE_PAUSE);
            }
        }
    }
}

/// Where the batch output layer writes. Cheap to clone.
#[derive(Clone)]
pub struct StdoutWriter {
    shared: Arc<Shared>,
}

impl StdoutWriter {
    /// Appends whole lines, written by `f` straight into the buffer (no copy per line); waits while it is full.
    pub fn add(&self, f: impl FnOnce(&mut Vec<u8>)) {
        self.shared.add(f);
    }
}

/// Closes the output when dropped: waits until every buffered line is on stdout.
pub struct StdoutGuard {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
}

/// Starts the writer thread on `out` (stdout in the binary, anything `Write` in tests).
pub fn spawn(out: impl Write + Send + 'static) -> std::io::Result<(StdoutWriter, StdoutGuard)> {
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        to_writer: Condvar::new(),
        to_producers: Condvar::new(),
    });
    let for_thread = shared.clone();
    let writer = std::thread::Builder::new()
        .name("stdout".into())
        .spawn(move || for_thread.run_writer(out))?;
    Ok((
        StdoutWriter {
            shared: shared.clone(),
        },
        StdoutGuard {
            shared,
            writer: Some(writer),
        },
    ))
}

impl Drop for StdoutGuard {
    fn drop(&mut self) {
        {
            let mut st = self.shared.lock();
            st.closing = true;
            self.shared.to_writer.notify_one();
            self.shared.to_producers.notify_all();
        }
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// A sink that takes its time, and records the most bytes ever buffered upstream of it.
    struct SlowSink {
        got: Arc<Mutex<Vec<u8>>>,
        delay: Duration,
    }

    impl Write for SlowSink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            std::thread::sleep(self.delay);
            // A pipe takes at most 64 KiB per write.
            let n = buf.len().min(64 * 1024);
            self.got.lock().unwrap().extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_slow_sink_gets_every_line_and_the_buffer_stays_bounded() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let (w, guard) = spawn(SlowSink {
            got: got.clone(),
            delay: Duration::from_millis(1),
        })
        .unwrap();
        let most = AtomicUsize::new(0);
        let lines = 50_000;
        for i in 0..lines {
            w.add(|b| {
                writeln!(
                    b,
                    "line {i:06} of a test that writes faster than its reader"
                )
                .unwrap()
            });
            most.fetch_max(w.shared.lock().pending.len(), Ordering::Relaxed);
        }
        drop(guard);
        let got = String::from_utf8(got.lock().unwrap().clone()).unwrap();
        let seen: Vec<&str> = got.lines().collect();
        assert_eq!(seen.len(), lines);
        assert!(seen
            .iter()
            .enumerate()
            .all(|(i, l)| l.starts_with(&format!("line {i:06} "))));
        let line_len = "line 000000 of a test that writes faster than its reader\n".len();
        assert!(
            most.load(Ordering::Relaxed) < BUFFER_BYTES + line_len,
            "buffered {} bytes",
            most.load(Ordering::Relaxed)
        );
    }

    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_broken_stdout_discards_instead_of_blocking() {
        let (w, guard) = spawn(Broken).unwrap();
        // Far more than the buffer holds: must return, not wait for a reader that is gone.
        for _ in 0..(4 * BUFFER_BYTES / 64) {
            w.add(|b| writeln!(b, "{}", "x".repeat(63)).unwrap());
        }
        drop(guard);
        assert!(w.shared.lock().broken);
    }
}
