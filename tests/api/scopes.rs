//! SPEC §8's scopes, method by method: the server's method table
//! (`ladder::transport::methods`) names exactly the RPCs the API descriptors
//! declare, each with the scope SPEC §8 gives it (the list below, written
//! from the spec, not from the table); and every RPC is called with a token
//! holding exactly its scope (allowed) and with one holding every other
//! scope (refused with PERMISSION_DENIED naming the scope, before any SQL).
//! `admin` holds every scope.

use std::collections::BTreeSet;

use ladder::transport::methods;
use serde_json::json;
use tonic::Code;
use tonic::codegen::http::uri::PathAndQuery;
use tonic_types::StatusExt;

use crate::harness::{self, TestServer};

/// Every RPC and the one scope that grants it, as SPEC §8's table gives
/// it: the server's table is checked against this, not read into it.
const SCOPE_OF: &[(&str, &str)] = &[
    ("ladder.v1.RubricService/GetCompetency", "framework:read"),
    ("ladder.v1.RubricService/ListCompetencies", "framework:read"),
    (
        "ladder.v1.RubricService/CreateCompetency",
        "framework:write",
    ),
    (
        "ladder.v1.RubricService/UpdateCompetency",
        "framework:write",
    ),
    (
        "ladder.v1.RubricService/DeleteCompetency",
        "framework:write",
    ),
    ("ladder.v1.RubricService/GetRole", "framework:read"),
    ("ladder.v1.RubricService/ListRoles", "framework:read"),
    ("ladder.v1.RubricService/CreateRole", "framework:write"),
    ("ladder.v1.RubricService/UpdateRole", "framework:write"),
    ("ladder.v1.RubricService/DeleteRole", "framework:write"),
    ("ladder.v1.RubricService/GetRubric", "framework:read"),
    ("ladder.v1.RubricService/ListRubrics", "framework:read"),
    ("ladder.v1.RubricService/CreateRubric", "framework:write"),
    ("ladder.v1.RubricService/UpdateRubric", "framework:write"),
    ("ladder.v1.RubricService/DeleteRubric", "framework:write"),
    ("ladder.v1.RubricService/PublishRubric", "framework:write"),
    ("ladder.v1.RubricService/RetireRubric", "framework:write"),
    (
        "ladder.v1.AssessmentService/BatchCreateEvidence",
        "evidence:write",
    ),
    ("ladder.v1.AssessmentService/GetEvidence", "evidence:read"),
    ("ladder.v1.AssessmentService/ListEvidence", "evidence:read"),
    (
        "ladder.v1.AssessmentService/DeleteEvidence",
        "evidence:write",
    ),
    (
        "ladder.v1.AssessmentService/UpdateEvidence",
        "evidence:write",
    ),
    ("ladder.v1.AssessmentService/GetSubject", "evidence:read"),
    (
        "ladder.v1.AssessmentService/UpdateSubject",
        "evidence:write",
    ),
    (
        "ladder.v1.AssessmentService/BatchUpdateSubjects",
        "evidence:write",
    ),
    ("ladder.v1.AssessmentService/ListSubjects", "evidence:read"),
    ("ladder.v1.AssessmentService/GetScoringPolicy", "assess"),
    ("ladder.v1.AssessmentService/UpdateScoringPolicy", "admin"),
    ("ladder.v1.AssessmentService/CreateAssessment", "assess"),
    ("ladder.v1.AssessmentService/GetAssessment", "assess"),
    ("ladder.v1.AssessmentService/ListAssessments", "assess"),
    ("ladder.v1.RecommendationService/Recommend", "assess"),
    ("ladder.v1.RecommendationService/WhatIf", "assess"),
    ("ladder.v1.AuditService/ListAuditEvents", "admin"),
    ("ladder.v1.SubjectRightsService/ExportSubjectData", "admin"),
    ("ladder.v1.SubjectRightsService/EraseSubject", "admin"),
    ("ladder.v1.RubricService/ListTracks", "framework:read"),
    (
        "ladder.v1.FrameworkService/ImportFramework",
        "framework:write",
    ),
    (
        "ladder.v1.FrameworkService/ExportFramework",
        "framework:read",
    ),
    ("ladder.v1.XapiService/ImportStatements", "evidence:write"),
    ("ladder.v1.CalibrationService/RunCalibration", "admin"),
    ("ladder.v1.CalibrationService/GetCalibration", "admin"),
    ("ladder.v1.CalibrationService/ListCalibrations", "admin"),
    ("ladder.v1.CalibrationService/ListRaterEffects", "admin"),
    ("ladder.v1.OversightService/ExplainAssessment", "assess"),
    ("ladder.v1.OversightService/RecordDecision", "decide"),
    ("ladder.v1.OversightService/ListDecisions", "decide"),
    ("ladder.v1.OversightService/GetOversightReport", "admin"),
    ("ladder.v1.OversightService/ComputeImpactReport", "admin"),
];

const SCOPES: [&str; 7] = [
    "framework:read",
    "framework:write",
    "evidence:read",
    "evidence:write",
    "assess",
    "decide",
    "admin",
];

/// Every `ladder.*` RPC the served descriptors declare.
fn declared_methods() -> BTreeSet<String> {
    ladder::proto::descriptor_pool()
        .services()
        .filter(|s| s.full_name().starts_with("ladder."))
        .flat_map(|s| {
            s.methods()
                .map(|m| format!("{}/{}", s.full_name(), m.name()))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn scoped_token(scopes: &[&str]) -> String {
    harness::sign(
        harness::ISSUER_PRIVATE_KEY,
        json!({
            "sub": "scope-tester",
            "tenant": "tenant-scopes",
            "aud": harness::AUDIENCE,
            "scope": scopes.join(" "),
            "exp": jsonwebtoken::get_current_timestamp() + 600,
        }),
    )
}

/// Calls `method` with an empty request message: whatever the method makes
/// of that, only the scope check decides PERMISSION_DENIED.
async fn call(
    channel: tonic::transport::Channel,
    method: &str,
    token: &str,
) -> Result<(), tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(());
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let path = PathAndQuery::try_from(format!("/{method}")).unwrap();
    grpc.unary(request, path, tonic_prost::ProstCodec::<(), ()>::default())
        .await
        .map(|_| ())
}

#[test]
fn the_method_table_names_every_rpc_once_with_its_spec_scope() {
    let names: Vec<&str> = methods::ALL.iter().map(|m| m.name).collect();
    let table: BTreeSet<String> = names.iter().map(|m| m.to_string()).collect();
    assert_eq!(table.len(), names.len(), "a method twice in the table");
    assert_eq!(
        table,
        declared_methods(),
        "the method table must name exactly the RPCs the API declares"
    );
    let spec: BTreeSet<String> = SCOPE_OF.iter().map(|(m, _)| m.to_string()).collect();
    assert_eq!(spec, table, "SCOPE_OF must name exactly the table's RPCs");
    for method in methods::ALL {
        let scope = SCOPE_OF.iter().find(|(m, _)| *m == method.name).unwrap().1;
        assert_eq!(method.scope.as_str(), scope, "{}", method.name);
        assert!(
            SCOPES.contains(&scope),
            "{}: unknown scope {scope}",
            method.name
        );
    }
}

#[tokio::test]
async fn every_rpc_needs_its_scope_and_no_other() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let admin = scoped_token(&["admin"]);
    for method in methods::ALL {
        let (method, scope) = (method.name, method.scope.as_str());
        let exactly = scoped_token(&[scope]);
        // Every other scope; `admin` holds them all, so it is left out too.
        let others: Vec<&str> = SCOPES
            .iter()
            .copied()
            .filter(|s| *s != scope && *s != "admin")
            .collect();
        for (who, token) in [("its own scope", &exactly), ("admin", &admin)] {
            if let Err(status) = call(channel.clone(), method, token).await {
                assert!(
                    !matches!(
                        status.code(),
                        Code::PermissionDenied | Code::Unauthenticated
                    ),
                    "{method} with {who}: {status:?}"
                );
            }
        }
        let status = call(channel.clone(), method, &scoped_token(&others))
            .await
            .expect_err(method);
        assert_eq!(
            status.code(),
            Code::PermissionDenied,
            "{method}: {status:?}"
        );
        assert!(status.message().contains(scope), "{method}: {status:?}");
        let info = status.get_details_error_info().expect("ErrorInfo");
        assert_eq!(info.metadata.get("scope").map(String::as_str), Some(scope));
    }
    // Refused calls ran no SQL: the tenant was never even provisioned.
    let tenants: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tenants WHERE tenant_id = 'tenant-scopes'")
            .fetch_one(&server.pool)
            .await
            .unwrap();
    assert_eq!(tenants, 1, "provisioned by the allowed calls only");
}

#[tokio::test]
async fn a_token_without_scopes_runs_nothing() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let none = scoped_token(&[]);
    for method in methods::ALL.iter().map(|m| m.name) {
        let status = call(channel.clone(), method, &none)
            .await
            .expect_err(method);
        assert_eq!(status.code(), Code::PermissionDenied, "{method}");
    }
    let tenants: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tenants WHERE tenant_id = 'tenant-scopes'")
            .fetch_one(&server.pool)
            .await
            .unwrap();
    assert_eq!(tenants, 0, "a refused call provisions nothing");
}
