//! Sleeps precise to tens of microseconds for open-loop sends. tokio's timer wakes on
//! millisecond ticks, which alone would make sends up to a millisecond late; a timerfd
//! (a high-resolution kernel timer the runtime's poller watches) wakes on time.

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::{Duration, Instant};

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::unix::AsyncFd;

/// A timerfd the async runtime can wait on.
struct Timer(TimerFd);

impl AsRawFd for Timer {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// Waits until instants with the kernel's high-resolution timer, or with tokio's timer
/// where no timerfd can be had.
pub struct Pacer {
    timer: Option<AsyncFd<Timer>>,
}

impl Pacer {
    pub fn new() -> Self {
        let timer = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )
        .ok()
        // SAFETY: `Timer` owns the timerfd for as long as the AsyncFd holds it and always
        // returns that one descriptor.
        .and_then(|fd| unsafe { AsyncFd::register(Timer(fd)) }.ok());
        Pacer { timer }
    }

    /// Whether waits are precise (a timerfd) rather than on millisecond ticks.
    pub fn precise(&self) -> bool {
        self.timer.is_some()
    }

    /// Returns at `at` (at once when it has passed).
    pub async fn sleep_until(&self, at: Instant) {
        let Some(timer) = &self.timer else {
            return tokio::time::sleep_until(at.into()).await;
        };
        loop {
            let now = Instant::now();
            if now >= at {
                return;
            }
            // Arming again replaces an earlier, abandoned deadline.
            let left = TimeSpec::from_duration((at - now).max(Duration::from_nanos(1)));
            if timer
                .get_ref()
                .0
                .set(Expiration::OneShot(left), TimerSetTimeFlags::empty())
                .is_err()
            {
                return tokio::time::sleep_until(at.into()).await;
            }
            let Ok(mut ready) = timer.readable().await else {
                return tokio::time::sleep_until(at.into()).await;
            };
            // Reading clears the expiration; an early wake (an old deadline) loops.
            let mut count = [0u8; 8];
            let _ = ready.try_io(|fd| {
                nix::unistd::read(fd.get_ref().0.as_fd(), &mut count).map_err(std::io::Error::from)
            });
        }
    }
}

impl Default for Pacer {
    fn default() -> Self {
        Pacer::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wakes_at_the_instant_not_before() {
        let pacer = Pacer::new();
        assert!(pacer.precise(), "timerfd is available on Linux");
        let at = Instant::now() + Duration::from_micros(300);
        pacer.sleep_until(at).await;
        assert!(Instant::now() >= at);
        // An abandoned wait leaves the timer armed and firing; the next wait still ends on
        // time, not at the old deadline.
        use futures_util::FutureExt;
        let abandoned = pacer.sleep_until(Instant::now() + Duration::from_micros(50));
        assert!(abandoned.now_or_never().is_none());
        std::thread::sleep(Duration::from_micros(200));
        let later = Instant::now() + Duration::from_millis(2);
        pacer.sleep_until(later).await;
        assert!(Instant::now() >= later);
    }
}
