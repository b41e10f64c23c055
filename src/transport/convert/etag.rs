//! Etags (AIP-154): a row's revision, quoted so it is not taken for a
//! number. Made and parsed here only; storage deals in revisions.

use crate::domain::validation::Violations;

pub fn of(revision: i64) -> String {
    format!("r{revision}")
}

/// The revision an update or delete must find: `None` for an empty etag
/// ("whatever is stored"); an etag this server did not make is refused,
/// naming `field`.
pub fn expected(etag: &str, field: &str) -> Result<Option<i64>, Violations> {
    if etag.is_empty() {
        return Ok(None);
    }
    etag.strip_prefix('r')
        .and_then(|revision| revision.parse().ok())
        .map(Some)
        .ok_or_else(|| Violations::one(field, "is not an etag this server returned"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_etag_names_its_revision() {
        assert_eq!(expected(&of(7), "etag").unwrap(), Some(7));
        assert_eq!(expected("", "etag").unwrap(), None);
        let err = expected("W/\"7\"", "role.etag").unwrap_err();
        assert_eq!(err.0[0].field, "role.etag");
    }
}
