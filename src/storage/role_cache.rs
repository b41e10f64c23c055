//! Each tenant's roles (all of them, retired ones too, with their
//! transitions and row metadata) in memory, for `GetRole`: otherwise a
//! transaction of four round trips for a row that changes a few times a year.
//!
//! The scoring path's catalog checks the framework revision it reads with the
//! evidence; a read here asks the database nothing, so entries are dropped by
//! push instead. Every framework change notifies channel [`CHANNEL`] with its
//! tenant when it commits (migration 0012), and [`watch`] drops that tenant's
//! entry. This server's own framework writes drop it as they commit
//! ([`RoleCache::drop_tenant`]), so a caller reads its own writes; another
//! replica's writes arrive with the notification, milliseconds later.
//!
//! Entries are served and kept only while the listener is connected. When its
//! connection is lost, every entry is dropped and reads go to the database
//! until it listens again; a load that began before a drop keeps nothing, so
//! an entry is never older than the last notification.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use quick_cache::sync::Cache;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};

use crate::domain::framework::Role;
use crate::storage::TenantId;
use crate::storage::stored::Stored;

/// The channel migration 0012's trigger notifies.
pub const CHANNEL: &str = "ladder_framework";

/// The listener's `application_name`, as `pg_stat_activity` shows it.
pub const APPLICATION_NAME: &str = "ladder framework listener";

/// How many tenants' roles a server keeps.
const CAPACITY: usize = 1000;

/// How long the listener waits before connecting again after losing its
/// connection or failing to connect.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// How often each server notifies the channel with an empty payload: a
/// connection that only receives cannot tell a quiet database from a dead
/// link (a NAT's idle timeout, a failover, a pooler that does not carry
/// `LISTEN`), so the listener counts itself lost after [`SILENCE_LIMIT`]
/// without hearing anything.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);
const SILENCE_LIMIT: Duration = Duration::from_secs(30);

const HEARTBEAT: &str = "SELECT pg_notify($1, '')";

/// A tenant's roles by id.
pub type Roles = HashMap<String, Stored<Role>>;

pub struct RoleCache {
    entries: Cache<TenantId, Arc<Roles>>,
    /// Whether the listener is connected: nothing is served or kept otherwise.
    listening: AtomicBool,
    /// Counts drops. A load keeps what it read only if no drop happened
    /// since it began; the lock makes that check and the insert one step.
    drops: Mutex<u64>,
}

impl std::fmt::Debug for RoleCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoleCache")
            .field("tenants", &self.entries.len())
            .field("listening", &self.listening.load(Ordering::Acquire))
            .finish()
    }
}

impl Default for RoleCache {
    fn default() -> Self {
        Self {
            entries: Cache::new(CAPACITY),
            listening: AtomicBool::new(false),
            drops: Mutex::new(0),
        }
    }
}

/// Where a load began: what [`RoleCache::keep`] needs to know whether the
/// roles read since are still current.
#[derive(Debug, Clone, Copy)]
pub struct LoadStart(u64);

impl RoleCache {
    /// The tenant's roles, when they are in memory and known to be current.
    pub fn get(&self, tenant: &TenantId) -> Option<Arc<Roles>> {
        if !self.listening.load(Ordering::Acquire) {
            return None;
        }
        self.entries.get(tenant)
    }

    /// Call before reading the roles that [`RoleCache::keep`] may keep.
    pub fn begin_load(&self) -> LoadStart {
        LoadStart(*self.lock_drops())
    }

    /// Keeps `roles`, read since `start`, unless something was dropped
    /// meanwhile (they may predate a change) or nobody listens.
    pub fn keep(&self, tenant: &TenantId, start: LoadStart, roles: Arc<Roles>) {
        let drops = self.lock_drops();
        if *drops == start.0 && self.listening.load(Ordering::Acquire) {
            self.entries.insert(tenant.clone(), roles);
        }
    }

    /// Forgets the tenant's roles: its framework changed.
    pub fn drop_tenant(&self, tenant: &TenantId) {
        let mut drops = self.lock_drops();
        *drops += 1;
        self.entries.remove(tenant);
    }

    /// Forgets every tenant's roles and serves or keeps none until
    /// `listening` is set again.
    fn set_listening(&self, listening: bool) {
        let mut drops = self.lock_drops();
        *drops += 1;
        self.listening.store(listening, Ordering::Release);
        self.entries.clear();
    }

    fn lock_drops(&self) -> std::sync::MutexGuard<'_, u64> {
        // A counter and a cache: a panic elsewhere cannot leave them inconsistent.
        self.drops.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Listens on [`CHANNEL`], on connections of its own to `session` (the
/// database itself, never a transaction pooler, which would hand the
/// listening session to other clients): one listens, one sends the
/// heartbeat, beside the calls' pool. Returns the work of dropping the
/// roles of every tenant whose framework changes, which runs until it is
/// dropped and connects again whenever its connection is lost. Listening
/// before the server serves makes the first call's roles kept, and leaves no
/// connection halfway through its start when a short-lived server stops; a
/// first listen that fails (a standby refuses LISTEN) is tried again like
/// a lost one, roles being read from the database meanwhile.
pub async fn watch(
    cache: Arc<RoleCache>,
    session: PgConnectOptions,
) -> impl Future<Output = ()> + use<> {
    let own = PgPoolOptions::new()
        .max_connections(2)
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_lazy_with(session.application_name(APPLICATION_NAME));
    let first = listen(&own).await;
    notify_until_dropped(cache, own, first)
}

async fn notify_until_dropped(
    cache: Arc<RoleCache>,
    own: PgPool,
    first: Result<PgListener, sqlx::Error>,
) {
    let _stop = StopServingOnDrop(Arc::clone(&cache));
    let _heartbeat = AbortOnDrop(tokio::spawn(heartbeat(own.clone())));
    let mut connected = first;
    loop {
        match connected {
            Ok(mut listener) => {
                // Anything read before the LISTEN took effect is dropped here.
                cache.set_listening(true);
                let lost = loop {
                    match tokio::time::timeout(SILENCE_LIMIT, listener.try_recv()).await {
                        Ok(Ok(Some(notification))) => {
                            let tenant = notification.payload();
                            if !tenant.is_empty() {
                                cache.drop_tenant(&TenantId(tenant.to_owned()));
                            }
                        }
                        // The connection was lost, and notifications may
                        // have been missed while it was.
                        Ok(Ok(None)) => break "the connection was closed".to_owned(),
                        Ok(Err(error)) => break error.to_string(),
                        Err(_) => break format!("nothing heard for {SILENCE_LIMIT:?}"),
                    }
                };
                cache.set_listening(false);
                tracing::warn!(
                    reason = %lost,
                    "lost the framework change listener; reading roles from the database"
                );
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for framework changes; reading roles from the database");
            }
        }
        tokio::time::sleep(RECONNECT_AFTER).await;
        connected = listen(&own).await;
    }
}

/// Notifies [`CHANNEL`] with an empty payload every [`HEARTBEAT_EVERY`], on
/// the listener's own pool (the database itself, where a named statement
/// stays on its session), so that every listening server hears something
/// while its link lives.
async fn heartbeat(pool: PgPool) {
    loop {
        tokio::time::sleep(HEARTBEAT_EVERY).await;
        if let Err(error) = sqlx::query(HEARTBEAT).bind(CHANNEL).execute(&pool).await {
            tracing::debug!(%error, "framework listener heartbeat");
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Nobody follows the changes once the work is dropped: serve nothing more.
struct StopServingOnDrop(Arc<RoleCache>);

impl Drop for StopServingOnDrop {
    fn drop(&mut self) {
        self.0.set_listening(false);
    }
}

async fn listen(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    // Reconnecting is this module's work: it must stop serving before.
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(id: &str) -> TenantId {
        TenantId(id.into())
    }

    #[test]
    fn nothing_is_served_or_kept_while_nobody_listens() {
        let cache = RoleCache::default();
        let start = cache.begin_load();
        cache.keep(&tenant("a"), start, Arc::default());
        assert!(cache.get(&tenant("a")).is_none());
        cache.set_listening(true);
        assert!(cache.get(&tenant("a")).is_none());
    }

    #[test]
    fn a_load_that_began_before_any_drop_is_not_kept() {
        let cache = RoleCache::default();
        cache.set_listening(true);
        let start = cache.begin_load();
        cache.drop_tenant(&tenant("b"));
        cache.keep(&tenant("a"), start, Arc::default());
        assert!(cache.get(&tenant("a")).is_none());

        let start = cache.begin_load();
        cache.keep(&tenant("a"), start, Arc::default());
        assert!(cache.get(&tenant("a")).is_some());
        cache.drop_tenant(&tenant("a"));
        assert!(cache.get(&tenant("a")).is_none());
    }

    #[test]
    fn losing_the_listener_forgets_every_tenant() {
        let cache = RoleCache::default();
        cache.set_listening(true);
        let start = cache.begin_load();
        cache.keep(&tenant("a"), start, Arc::default());
        let before_the_loss = cache.begin_load();
        cache.set_listening(false);
        assert!(cache.get(&tenant("a")).is_none());
        cache.set_listening(true);
        assert!(cache.get(&tenant("a")).is_none());
        // A load begun while the listener was down is not kept either.
        cache.keep(&tenant("a"), before_the_loss, Arc::default());
        assert!(cache.get(&tenant("a")).is_none());
    }
}
