//! Keeping the server's resident memory near what it uses. glibc's malloc
//! gives a thread its own arena (up to eight per core) and keeps freed pages
//! in them: after a burst of calls on tokio's worker and blocking threads the
//! server's RSS stays at its peak. Two arenas serve a server whose threads
//! spend their time waiting on sockets, and what is free is given back to
//! the system once the server is idle.

use std::time::Duration;

use crate::transport::admission::Admission;

/// How often an idle server gives freed memory back.
const TRIM_INTERVAL: Duration = Duration::from_secs(5);

/// Caps malloc's arenas; call before the runtime starts its threads.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Gives the memory malloc holds free back to the system once the server is
/// idle after calls, checking every [`TRIM_INTERVAL`]; runs until aborted.
pub async fn trim_when_idle(admission: Admission) {
    let mut trimmed_after = admission.admitted();
    loop {
        tokio::time::sleep(TRIM_INTERVAL).await;
        let admitted = admission.admitted();
        if admitted != trimmed_after && admission.idle() {
            trimmed_after = admitted;
            // It walks the whole heap: off the async workers.
            let _ = tokio::task::spawn_blocking(trim).await;
        }
    }
}

fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}
