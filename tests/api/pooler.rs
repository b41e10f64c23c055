//! Behind a transaction pooler (Debian's PgBouncer 1.18 in transaction
//! mode): the harness's pooler hands server connections from client to
//! client between transactions.

use sqlx::{Connection, PgConnection};

use crate::harness::{Pooler, TestServer};

#[tokio::test]
async fn the_pooler_hands_server_connections_between_transactions() {
    let server = TestServer::start().await;
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&server.pool)
        .await
        .unwrap();
    let pooler = Pooler::start(1);
    let mut a = PgConnection::connect_with(&pooler.app_options(&database))
        .await
        .unwrap();
    let mut b = PgConnection::connect_with(&pooler.app_options(&database))
        .await
        .unwrap();
    // One server connection for both clients: a setting one makes for its
    // session is there for the other.
    sqlx::raw_sql("SET application_name = 'left by a'")
        .execute(&mut a)
        .await
        .unwrap();
    let seen: String = sqlx::raw_sql("SHOW application_name")
        .fetch_one(&mut b)
        .await
        .map(|row| sqlx::Row::get(&row, 0))
        .unwrap();
    assert_eq!(seen, "left by a");
}
