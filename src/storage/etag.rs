//! Etags are the row's revision, quoted so they are not mistaken for numbers.

pub fn of(revision: i64) -> String {
    format!("r{revision}")
}

/// The revision an etag names, if it is one of ours.
pub fn revision(etag: &str) -> Option<i64> {
    etag.strip_prefix('r')?.parse().ok()
}
