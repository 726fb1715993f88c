//! Each worker thread's note of its last request, which keeps it polling for a short while after
//! one ([`crate::ServeConfig::idle_spin_us`]). A leaf: the router notes requests here and the workers
//! read it, without either importing the other.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

thread_local! {
    static ACTIVITY: Activity = Activity::new();
}

/// When this worker last handled a request, and the spinner to wake when one starts.
struct Activity {
    last: Cell<Instant>,
    requests: Rc<Notify>,
}

impl Activity {
    fn new() -> Self {
        Self {
            last: Cell::new(Instant::now()),
            requests: Rc::new(Notify::new()),
        }
    }
}

/// Called by the router for every request, on the thread that handles it.
pub(crate) fn note_request() {
    ACTIVITY.with(|a| {
        a.last.set(Instant::now());
        a.requests.notify_one();
    });
}

/// Sleeps until a request arrives, then keeps this worker polling (yielding to every other task and
/// to the I/O driver in turn) until `window` passes with no new request.
pub(crate) async fn spin_after_requests(window: Duration) {
    let requests = ACTIVITY.with(|a| a.requests.clone());
    loop {
        requests.notified().await;
        while ACTIVITY.with(|a| a.last.get().elapsed()) < window {
            tokio::task::yield_now().await;
        }
    }
}
