//! Tenant connections kept out of the pool between scoring calls.
//!
//! Giving a scoring call's connection back to sqlx's pool costs a round
//! trip after every call: the check that no transaction was left open
//! ([`OUTSIDE_TRANSACTION`](super::OUTSIDE_TRANSACTION)) and the `Sync`
//! sqlx sends to every connection it takes back. A connection whose call
//! finished with every statement answered needs neither: nothing is in
//! flight on it and no transaction is open (the scoring path runs single
//! statements and transactions it commits). Such connections wait here,
//! still checked out of the pool, for the next scoring call of any tenant:
//! they carry no setting of the last one (no setting outlives a
//! transaction), only the tenant the next call gives them on this side.
//!
//! What the pool would otherwise have done is done here: a connection idle
//! long enough to be suspect (or since a loss) is not used but sent back
//! the checked way, so that the pool pings or replaces it, and the server's
//! health monitor sends back those idle that long anyway
//! ([`Db::release_idle_connections`]), so that the pool's idle timeout
//! applies to a quiet server's connections; one kept for
//! [`KEEP_FOR`] is sent back once, so that the pool's lifetime limit
//! applies; while any work waits for the pool nothing is kept, and a
//! transaction that finds the pool exhausted sends one back
//! ([`WarmConnections::wait_for_pool`]), so that kept connections never
//! starve other work; and closing sends them all back.
//!
//! [`Db::connection`]: super::Db::connection
//! [`Db::release_idle_connections`]: super::Db::release_idle_connections

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::TenantConnection;

/// How long a connection may go from call to call without going back to
/// the pool: it then goes back once (checked), so that it is
/// closed when it outlives the pool's `max_lifetime`.
const KEEP_FOR: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
pub(super) struct WarmConnections {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Most recently kept last.
    kept: Vec<Kept>,
    /// Checkouts waiting for the pool: while there are any, a finished
    /// connection goes back to the pool, where they wait for it.
    waiting: usize,
    /// Set by [`WarmConnections::close`]: nothing is kept any more.
    closed: bool,
}

#[derive(Debug)]
struct Kept {
    conn: TenantConnection,
    idle_since: Instant,
}

/// What a scoring call gets from [`WarmConnections::take`].
pub(super) enum Checkout {
    Kept {
        conn: TenantConnection,
        idle_for: Duration,
    },
    /// None is kept: take one from the pool, holding this meanwhile.
    FromPool(PoolWait),
}

/// A checkout waiting for the pool, counted until dropped.
#[derive(Debug)]
pub(super) struct PoolWait(Arc<WarmConnections>);

impl Drop for PoolWait {
    fn drop(&mut self) {
        self.0.state().waiting -= 1;
    }
}

impl WarmConnections {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps `conn`, whose call's statements were all answered, for the next
    /// scoring call, unless other work waits for the pool or it has been
    /// kept for [`KEEP_FOR`]: then it is dropped instead (checked and given
    /// back to the pool).
    pub(super) fn keep(&self, conn: TenantConnection) {
        let mut state = self.state();
        if state.closed || state.waiting > 0 || conn.kept_since.elapsed() >= KEEP_FOR {
            drop(state);
            drop(conn);
            return;
        }
        state.kept.push(Kept {
            conn,
            idle_since: Instant::now(),
        });
    }

    /// The connection kept last, unless it has been idle long enough for
    /// `suspect` to doubt it: then it and every connection kept before it
    /// are given back to the pool (which checks them), and the caller takes
    /// one from the pool like a call that found none kept.
    pub(super) fn take(self: &Arc<Self>, suspect: impl Fn(Duration) -> bool) -> Checkout {
        let mut state = self.state();
        let doubted = match state.kept.last() {
            Some(last) if !suspect(last.idle_since.elapsed()) => {
                let kept = state.kept.pop().expect("the last one");
                return Checkout::Kept {
                    idle_for: kept.idle_since.elapsed(),
                    conn: kept.conn,
                };
            }
            Some(_) => std::mem::take(&mut state.kept),
            None => Vec::new(),
        };
        state.waiting += 1;
        drop(state);
        // Dropped outside the lock: each drop hands its connection to a
        // task that checks it and gives it back to the pool.
        drop(doubted);
        Checkout::FromPool(PoolWait(Arc::clone(self)))
    }

    /// Counts a checkout of other work (a transaction) waiting for the pool
    /// until the returned guard is dropped; when the pool is `exhausted`,
    /// the connection kept longest goes back to it first.
    pub(super) fn wait_for_pool(self: &Arc<Self>, exhausted: bool) -> PoolWait {
        let mut state = self.state();
        state.waiting += 1;
        let oldest = (exhausted && !state.kept.is_empty()).then(|| state.kept.remove(0));
        drop(state);
        drop(oldest);
        PoolWait(Arc::clone(self))
    }

    /// Gives back to the pool the connections kept idle for `idle_for` or
    /// longer.
    pub(super) fn release_idle(&self, idle_for: Duration) {
        let idle = {
            let mut state = self.state();
            let stale = state
                .kept
                .iter()
                .take_while(|kept| kept.idle_since.elapsed() >= idle_for)
                .count();
            state.kept.drain(..stale).collect::<Vec<_>>()
        };
        drop(idle);
    }

    /// Gives every kept connection back to the pool and keeps none from now
    /// on: the pool can close only once all its connections are back.
    pub(super) fn close(&self) {
        let kept = {
            let mut state = self.state();
            state.closed = true;
            std::mem::take(&mut state.kept)
        };
        drop(kept);
    }

    /// How many connections are kept (idle, though the pool counts them in
    /// use).
    pub(super) fn len(&self) -> usize {
        self.state().kept.len()
    }
}
