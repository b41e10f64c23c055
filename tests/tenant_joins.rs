//! No statement joins across tenants (what distributing the tables by
//! tenant with Citus needs, docs/operations.md): every join in the storage
//! layer's SQL matches `tenant_id` on both sides, and every lateral subquery
//! is scoped to the statement's tenant. The SQL is read from the sources,
//! where it lives as named constants.

use std::path::Path;

/// The text a join's condition may span: up to the next clause.
fn condition_of(after_join: &str) -> &str {
    let end = ["JOIN", "WHERE", "SELECT", "ORDER BY", "GROUP BY", "\";"]
        .iter()
        .filter_map(|stop| after_join.find(stop))
        .min()
        .unwrap_or(after_join.len());
    &after_join[..end]
}

/// A lateral subquery's text: from its opening parenthesis to the one that
/// closes it.
fn lateral_body(after_lateral: &str) -> &str {
    let start = after_lateral.find('(').expect("a lateral subquery");
    let mut depth = 0;
    for (i, c) in after_lateral[start..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &after_lateral[start..start + i];
                }
            }
            _ => {}
        }
    }
    panic!("an unclosed lateral subquery")
}

/// Every join of `sql` that does not keep to one tenant.
fn cross_tenant_joins(sql: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in sql.match_indices("JOIN ") {
        let after = &sql[at + "JOIN ".len()..];
        let scoped = if after.trim_start().starts_with("LATERAL") {
            let body = lateral_body(after);
            body.contains("tenant_id = $1") || body.contains("tenant_id = q.tenant_id")
        } else {
            condition_of(after).contains("tenant_id")
        };
        if !scoped {
            found.push(sql[at..(at + 80).min(sql.len())].to_string());
        }
    }
    found
}

#[test]
fn every_join_of_the_storage_layer_keeps_to_one_tenant() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/storage");
    let mut joins = 0;
    let mut offenders = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        // Rust line continuations join the constants' lines as PostgreSQL
        // sees them.
        let source = std::fs::read_to_string(&path).unwrap().replace("\\\n", " ");
        joins += source.matches("JOIN ").count();
        for join in cross_tenant_joins(&source) {
            offenders.push(format!("{}: {join}", path.display()));
        }
    }
    assert!(joins > 0, "the storage layer's joins were not found");
    assert!(offenders.is_empty(), "joins across tenants: {offenders:#?}");
}

#[test]
fn a_join_without_the_tenant_is_found() {
    let sql =
        "SELECT * FROM roles r JOIN rubric_versions v ON v.role_id = r.id WHERE r.tenant_id = $1";
    assert_eq!(cross_tenant_joins(sql).len(), 1);
    let lateral =
        "SELECT * FROM q CROSS JOIN LATERAL (SELECT id FROM evidence WHERE subject_id = $2) AS e";
    assert_eq!(cross_tenant_joins(lateral).len(), 1);
    let scoped = "SELECT * FROM q LEFT JOIN tenants t ON t.tenant_id = q.tenant_id \
                  CROSS JOIN LATERAL (SELECT id FROM evidence WHERE tenant_id = $1) AS e";
    assert!(cross_tenant_joins(scoped).is_empty());
}
