//! What the database itself guarantees: idempotent migrations, immutable
//! published rubric versions, and keys that let the schema be distributed by
//! tenant.

use std::process::Command;
use std::time::Duration;

use crate::harness::{TestServer, ladder_bin};

#[tokio::test]
async fn ladder_migrate_is_idempotent() {
    let server = TestServer::start().await;
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&server.pool)
        .await
        .unwrap();
    for _ in 0..2 {
        let out = Command::new(ladder_bin())
            .args([
                "migrate",
                "--log-format",
                "text",
                "--database-url",
                &server.database_url(),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&server.pool)
        .await
        .unwrap();
    assert!(before > 0);
    assert_eq!(before, after);
}

async fn exec(server: &TestServer, sql: &str) -> Result<u64, sqlx::Error> {
    sqlx::query(sql)
        .execute(&server.pool)
        .await
        .map(|r| r.rows_affected())
}

#[tokio::test]
async fn the_database_refuses_to_change_a_published_rubric_version() {
    let server = TestServer::start().await;
    for sql in [
        "INSERT INTO competencies (tenant_id, id, name, levels) VALUES ('t', 'system_design', 'System design', '[]')",
        "INSERT INTO tracks (tenant_id, id, name) VALUES ('t', 'individual_contributor', 'IC')",
        "INSERT INTO roles (tenant_id, id, name, track) VALUES ('t', 'staff_engineer', 'Staff Engineer', 'individual_contributor')",
        "INSERT INTO rubric_versions (tenant_id, role_id, version, state) VALUES ('t', 'staff_engineer', 1, 'draft')",
        "INSERT INTO rubric_competencies (tenant_id, role_id, version, competency_id, position, expected_level, weight) \
         VALUES ('t', 'staff_engineer', 1, 'system_design', 0, 4, 3.0)",
        // A draft is editable.
        "UPDATE rubric_competencies SET weight = 2.5 WHERE tenant_id = 't'",
        "UPDATE rubric_versions SET state = 'published', publish_time = now() WHERE tenant_id = 't'",
    ] {
        exec(&server, sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    for sql in [
        "UPDATE rubric_competencies SET weight = 1.0 WHERE tenant_id = 't'",
        "DELETE FROM rubric_competencies WHERE tenant_id = 't'",
        "INSERT INTO rubric_competencies (tenant_id, role_id, version, competency_id, position, expected_level, weight) \
         VALUES ('t', 'staff_engineer', 1, 'system_design', 1, 3, 1.0)",
        "UPDATE rubric_versions SET state = 'draft' WHERE tenant_id = 't'",
        "UPDATE rubric_versions SET publish_time = now() - interval '1 day' WHERE tenant_id = 't'",
        "UPDATE rubric_versions SET revision = revision + 1 WHERE tenant_id = 't'",
        "UPDATE rubric_versions SET state = 'published' WHERE tenant_id = 't'",
        "DELETE FROM rubric_versions WHERE tenant_id = 't'",
    ] {
        let err = exec(&server, sql).await.expect_err(sql);
        assert!(err.to_string().contains("immutable"), "{sql}: {err}");
    }
    let weight: f64 =
        sqlx::query_scalar("SELECT weight FROM rubric_competencies WHERE tenant_id = 't'")
            .fetch_one(&server.pool)
            .await
            .unwrap();
    assert_eq!(weight, 2.5);
    // Moving the state forward is the one change allowed.
    exec(
        &server,
        "UPDATE rubric_versions SET state = 'superseded' WHERE tenant_id = 't'",
    )
    .await
    .unwrap();
    exec(
        &server,
        "UPDATE rubric_versions SET state = 'retired' WHERE tenant_id = 't'",
    )
    .await
    .unwrap();
    exec(
        &server,
        "UPDATE rubric_versions SET state = 'published' WHERE tenant_id = 't'",
    )
    .await
    .expect_err("a retired version cannot come back");
}

async fn revision(server: &TestServer, tenant: &str) -> i64 {
    sqlx::query_scalar("SELECT framework_revision FROM tenants WHERE tenant_id = $1")
        .bind(tenant)
        .fetch_one(&server.pool)
        .await
        .unwrap()
}

/// Two framework writes of one tenant, where one waits for a role the other
/// holds, both commit: the revision bump, which locks the tenant row, runs at
/// commit, after every other lock is held, so it adds no lock cycle.
#[tokio::test]
async fn framework_writes_bump_the_revision_without_deadlocking() {
    use sqlx::{Connection, PgConnection};
    let server = TestServer::start().await;
    for sql in [
        "INSERT INTO tracks (tenant_id, id, name) VALUES ('t', 'individual_contributor', 'IC')",
        "INSERT INTO roles (tenant_id, id, name, track) VALUES ('t', 'a', 'A', 'individual_contributor')",
        "INSERT INTO roles (tenant_id, id, name, track) VALUES ('t', 's', 'S', 'individual_contributor')",
    ] {
        exec(&server, sql).await.unwrap();
    }
    let start = revision(&server, "t").await;
    assert!(
        start > 0,
        "creating roles registers the tenant with a revision"
    );

    let mut one = PgConnection::connect(&server.database_url()).await.unwrap();
    let mut two = PgConnection::connect(&server.database_url()).await.unwrap();
    let mut t2 = two.begin().await.unwrap();
    // T1 changes role a; T2 locks role s and publishes a rubric for it.
    for sql in [
        "BEGIN",
        "UPDATE roles SET name = 'A2' WHERE tenant_id = 't' AND id = 'a'",
    ] {
        sqlx::query(sql).execute(&mut one).await.unwrap();
    }
    sqlx::query("SELECT id FROM roles WHERE tenant_id = 't' AND id = 's' FOR UPDATE")
        .execute(&mut *t2)
        .await
        .unwrap();
    let publish = sqlx::query(
        "INSERT INTO rubric_versions (tenant_id, role_id, version, state) VALUES ('t', 's', 1, 'published')",
    )
    .execute(&mut *t2);
    tokio::time::timeout(Duration::from_secs(5), publish)
        .await
        .expect("the second writer does not wait for the first")
        .unwrap();
    // T1's transition into s waits for T2's lock on s...
    let transition = tokio::spawn(async move {
        sqlx::query(
            "INSERT INTO role_transitions (tenant_id, from_role_id, to_role_id, kind, position) \
             VALUES ('t', 'a', 's', 'promotion', 0)",
        )
        .execute(&mut one)
        .await?;
        sqlx::query("COMMIT").execute(&mut one).await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    // ...and T2's commit must not wait for T1 in turn.
    tokio::time::timeout(Duration::from_secs(5), t2.commit())
        .await
        .expect("the second writer's commit does not wait")
        .expect("the second writer commits");
    tokio::time::timeout(Duration::from_secs(5), transition)
        .await
        .expect("the first writer finishes")
        .unwrap()
        .expect("the first writer commits after it");
    assert!(revision(&server, "t").await > start);
}

/// Edits of a draft rubric leave every cached catalog valid.
#[tokio::test]
async fn draft_edits_leave_the_revision_alone() {
    let server = TestServer::start().await;
    for sql in [
        "INSERT INTO competencies (tenant_id, id, name, levels) VALUES ('t', 'system_design', 'System design', '[]')",
        "INSERT INTO tracks (tenant_id, id, name) VALUES ('t', 'individual_contributor', 'IC')",
        "INSERT INTO roles (tenant_id, id, name, track) VALUES ('t', 's', 'S', 'individual_contributor')",
    ] {
        exec(&server, sql).await.unwrap();
    }
    let start = revision(&server, "t").await;
    for sql in [
        "INSERT INTO rubric_versions (tenant_id, role_id, version, state) VALUES ('t', 's', 1, 'draft')",
        "UPDATE rubric_versions SET revision = revision + 1 WHERE tenant_id = 't'",
        "DELETE FROM rubric_versions WHERE tenant_id = 't'",
    ] {
        exec(&server, sql).await.unwrap();
        assert_eq!(revision(&server, "t").await, start, "{sql}");
    }
    exec(&server, "INSERT INTO rubric_versions (tenant_id, role_id, version, state) VALUES ('t', 's', 2, 'draft')")
        .await
        .unwrap();
    exec(&server, "UPDATE rubric_versions SET state = 'published', publish_time = now() WHERE tenant_id = 't'")
        .await
        .unwrap();
    assert!(revision(&server, "t").await > start);
}

/// Tables outside the tenant distribution: sqlx's migration bookkeeping, which
/// stays on the coordinator. (`tenants` is keyed by `tenant_id` itself and is
/// distributed like every other table.)
/// (`subject_hash_key` and `page_token_key` hold the deployment's keys:
/// reference tables, the same on every shard.)
const GLOBAL_TABLES: &[&str] = &["_sqlx_migrations", "subject_hash_key", "page_token_key"];

/// Every table of the schema but the global ones, without a `tenant_id` column.
const TABLES_WITHOUT_TENANT: &str = "\
    SELECT c.relname FROM pg_class c \
    WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') \
      AND c.relname <> ALL($1) \
      AND NOT EXISTS (SELECT 1 FROM pg_attribute a \
                      WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped) \
    ORDER BY 1";

/// Primary keys, unique constraints and unique indexes (partial ones too) of
/// the schema's tables whose columns leave out `tenant_id`.
const UNIQUE_KEYS_WITHOUT_TENANT: &str = "\
    SELECT t.relname || ': ' || i.relname FROM pg_index x \
    JOIN pg_class i ON i.oid = x.indexrelid \
    JOIN pg_class t ON t.oid = x.indrelid \
    WHERE t.relnamespace = 'public'::regnamespace AND x.indisunique \
      AND t.relname <> ALL($1) \
      AND NOT EXISTS (SELECT 1 FROM pg_attribute a \
                      WHERE a.attrelid = t.oid AND a.attname = 'tenant_id' \
                        AND a.attnum = ANY(x.indkey::int2[])) \
    ORDER BY 1";

/// Foreign keys that do not carry `tenant_id` to the referenced `tenant_id`.
const FOREIGN_KEYS_WITHOUT_TENANT: &str = "\
    SELECT t.relname || ': ' || c.conname FROM pg_constraint c \
    JOIN pg_class t ON t.oid = c.conrelid \
    WHERE t.relnamespace = 'public'::regnamespace AND c.contype = 'f' \
      AND NOT EXISTS ( \
          SELECT 1 FROM unnest(c.conkey, c.confkey) AS k(referencing, referenced) \
          JOIN pg_attribute ra ON ra.attrelid = c.conrelid AND ra.attnum = k.referencing \
          JOIN pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attnum = k.referenced \
          WHERE ra.attname = 'tenant_id' AND fa.attname = 'tenant_id') \
    ORDER BY 1";

/// What distributing every table by `tenant_id` (Citus) needs of the schema:
/// a shard holds whole tenants, so every uniqueness rule and every reference
/// must be decidable inside one tenant.
#[tokio::test]
async fn every_key_includes_the_tenant() {
    let server = TestServer::start().await;
    let global: Vec<String> = GLOBAL_TABLES.iter().map(|t| t.to_string()).collect();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT relname::text FROM pg_class \
         WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p')",
    )
    .fetch_all(&server.pool)
    .await
    .unwrap();
    for table in GLOBAL_TABLES {
        assert!(
            tables.iter().any(|t| t == table),
            "global table {table} no longer exists: drop it from GLOBAL_TABLES"
        );
    }
    assert!(tables.len() > GLOBAL_TABLES.len() + 5, "{tables:?}");
    for (what, sql) in [
        ("tables without a tenant_id column", TABLES_WITHOUT_TENANT),
        (
            "primary keys and unique constraints or indexes without tenant_id",
            UNIQUE_KEYS_WITHOUT_TENANT,
        ),
    ] {
        let offenders: Vec<String> = sqlx::query_scalar(sql)
            .bind(&global)
            .fetch_all(&server.pool)
            .await
            .unwrap();
        assert!(offenders.is_empty(), "{what}: {offenders:#?}");
    }
    let offenders: Vec<String> = sqlx::query_scalar(FOREIGN_KEYS_WITHOUT_TENANT)
        .fetch_all(&server.pool)
        .await
        .unwrap();
    assert!(
        offenders.is_empty(),
        "foreign keys that do not match tenant_id to tenant_id: {offenders:#?}"
    );
}
