//! What the database itself guarantees: idempotent migrations and immutable
//! published rubric versions.

use std::process::Command;

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
