//! The simulator's clock: deadlines kept to tens of microseconds on its own thread. tokio's
//! timer wakes on millisecond ticks, which alone would make every token up to a millisecond
//! late; here one timerfd (a high-resolution kernel timer the runtime's poller watches) is
//! armed for the earliest deadline and wakes every waiter whose time has come, so tokens due
//! together share a wake-up.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::unix::AsyncFd;

/// A waiter woken this early counts as on time (less than the wake-up itself costs).
const EARLY: Duration = Duration::from_micros(20);

/// A timerfd the async runtime can wait on.
struct Timer(TimerFd);

impl AsRawFd for Timer {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// A deadline and who waits for it (ordered by deadline, then arrival).
struct Waiting {
    at: Instant,
    seq: u64,
    waker: Waker,
}

impl PartialEq for Waiting {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Waiting {}
impl PartialOrd for Waiting {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Waiting {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

#[derive(Default)]
struct Queue {
    waiting: BinaryHeap<Reverse<Waiting>>,
    seq: u64,
    /// The deadline the timerfd is armed for.
    armed: Option<Instant>,
}

/// Precise sleeps for the tasks of one runtime; falls back to tokio's timer where no timerfd
/// can be had.
#[derive(Clone)]
pub struct Clock {
    timer: Option<Arc<AsyncFd<Timer>>>,
    queue: Arc<Mutex<Queue>>,
}

impl Clock {
    /// A clock for the current runtime; its driver must be spawned on that runtime.
    pub fn new() -> (Clock, impl Future<Output = ()> + Send + 'static) {
        let timer = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )
        .ok()
        // SAFETY: `Timer` owns the timerfd for as long as the AsyncFd holds it and always
        // returns that one descriptor.
        .and_then(|fd| unsafe { AsyncFd::register(Timer(fd)) }.ok())
        .map(Arc::new);
        let clock = Clock {
            timer,
            queue: Arc::default(),
        };
        let driver = clock.clone().drive();
        (clock, driver)
    }

    /// Returns at `at` (at once when it has passed).
    pub async fn sleep_until(&self, at: Instant) {
        if self.timer.is_none() {
            return tokio::time::sleep_until(at.into()).await;
        }
        Sleep { clock: self, at }.await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a waiter; re-arms the timer when it is now the earliest.
    fn wait(&self, at: Instant, waker: Waker) {
        let mut q = self.lock();
        q.seq += 1;
        let seq = q.seq;
        q.waiting.push(Reverse(Waiting { at, seq, waker }));
        if q.armed.is_none_or(|armed| at < armed) {
            q.armed = Some(at);
            drop(q);
            self.arm(at);
        }
    }

    fn arm(&self, at: Instant) {
        if let Some(timer) = &self.timer {
            let left = at
                .saturating_duration_since(Instant::now())
                .max(Duration::from_nanos(1));
            let _ = timer.get_ref().0.set(
                Expiration::OneShot(TimeSpec::from_duration(left)),
                TimerSetTimeFlags::empty(),
            );
        }
    }

    /// Wakes due waiters whenever the timer fires, and arms it for the next deadline.
    async fn drive(self) {
        let Some(timer) = self.timer.clone() else {
            return;
        };
        loop {
            let Ok(mut ready) = timer.readable().await else {
                return;
            };
            let mut count = [0u8; 8];
            let _ = ready.try_io(|fd| {
                nix::unistd::read(fd.get_ref().0.as_fd(), &mut count).map_err(std::io::Error::from)
            });
            let mut due = Vec::new();
            let next = {
                let mut q = self.lock();
                let now = Instant::now() + EARLY;
                while q.waiting.peek().is_some_and(|w| w.0.at <= now) {
                    if let Some(Reverse(w)) = q.waiting.pop() {
                        due.push(w.waker);
                    }
                }
                q.armed = q.waiting.peek().map(|w| w.0.at);
                q.armed
            };
            if let Some(at) = next {
                self.arm(at);
            }
            for waker in due {
                waker.wake();
            }
        }
    }
}

/// One precise sleep.
struct Sleep<'a> {
    clock: &'a Clock,
    at: Instant,
}

impl Future for Sleep<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() + EARLY >= self.at {
            return Poll::Ready(());
        }
        self.clock.wait(self.at, cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sleeps_end_on_time_and_in_deadline_order() {
        let (clock, driver) = Clock::new();
        assert!(clock.timer.is_some(), "timerfd is available on Linux");
        tokio::spawn(driver);
        let start = Instant::now();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut lateness = Vec::new();
        for ms in [15u64, 5, 10] {
            let at = start + Duration::from_millis(ms);
            let (c, order) = (clock.clone(), order.clone());
            lateness.push(tokio::spawn(async move {
                c.sleep_until(at).await;
                let now = Instant::now();
                order.lock().unwrap().push(ms);
                (now + EARLY >= at, now.saturating_duration_since(at))
            }));
        }
        for late in lateness {
            let (not_early, late) = late.await.unwrap();
            assert!(not_early, "a sleep ended more than {EARLY:?} early");
            assert!(late < Duration::from_millis(3), "{late:?}");
        }
        assert_eq!(*order.lock().unwrap(), vec![5, 10, 15]);
        // A deadline in the past returns at once.
        clock.sleep_until(start).await;
    }
}
