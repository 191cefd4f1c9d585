//! Reads bounded by one deadline for a whole exchange rather than a timeout per read, so a peer
//! that sends a byte now and then cannot hold kmsconf past the deadline (the DNS server over TCP,
//! the KDC); and [`within`], which bounds a call kmsconf cannot interrupt (MIT's GSS-API asking
//! a KDC for a ticket) by running it in a thread of its own.

use std::io::{self, Read};
use std::net::TcpStream;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Fills `buffer` from `stream` by `deadline`: each read waits only for the time left. A
/// deadline that passes is a `TimedOut` error; a stream that ends first, `UnexpectedEof`.
pub fn read_exact_by(
    stream: &mut TcpStream,
    mut buffer: &mut [u8],
    deadline: Instant,
) -> io::Result<()> {
    while !buffer.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(buffer) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => buffer = &mut buffer[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Runs `work` in a thread named `name` and waits for it up to `limit`: `Ok(None)` when it has
/// not finished by then. The thread is then left to finish on its own; what it returns later is
/// dropped in that thread unread (its channel has no receiver any more), so `work` must own all
/// it touches and hold nothing the caller waits for. A `work` that panics is an error.
pub fn within<T: Send + 'static>(
    name: &str,
    limit: Duration,
    work: impl FnOnce() -> T + Send + 'static,
) -> io::Result<Option<T>> {
    let (done, result) = mpsc::channel();
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let _ = done.send(work());
        })?;
    match result.recv_timeout(limit) {
        Ok(value) => Ok(Some(value)),
        Err(RecvTimeoutError::Timeout) => Ok(None),
        Err(RecvTimeoutError::Disconnected) => Err(io::Error::other(format!(
            "the `{name}` thread ended without an answer"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_that_finishes_in_time_gives_its_value() {
        let got = within("quick", Duration::from_secs(5), || 7).expect("spawned");
        assert_eq!(got, Some(7));
    }

    /// A call past its limit is given up at the limit; its late value is dropped in its own
    /// thread, never delivered.
    #[test]
    fn a_late_call_is_given_up_at_the_limit_and_its_value_dropped_unread() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        struct Flag(Arc<AtomicBool>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = Flag(dropped.clone());
        let start = Instant::now();
        let got = within("slow", Duration::from_millis(200), move || {
            std::thread::sleep(Duration::from_millis(600));
            flag
        })
        .expect("spawned");
        assert!(got.is_none());
        let took = start.elapsed();
        assert!(took < Duration::from_millis(500), "{took:?}");
        let until = Instant::now() + Duration::from_secs(5);
        while !dropped.load(Ordering::SeqCst) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(dropped.load(Ordering::SeqCst), "the late value was dropped");
    }

    #[test]
    fn a_call_that_panics_is_an_error() {
        let e = within("panics", Duration::from_secs(5), || -> u8 {
            panic!("inside")
        })
        .expect_err("no value");
        assert!(e.to_string().contains("`panics` thread ended"), "{e}");
    }
}
