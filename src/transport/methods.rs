//! Every RPC of the API, once: its full name, the scope that grants it
//! (SPEC §8), whether it writes (and so is audited) and where its
//! statements go. The handlers name their method from here and the
//! pipeline acts on what it says; `tests/api/scopes.rs` holds it to the
//! compiled descriptors and SPEC §8, and `tests/api/api_doc.rs` holds
//! `docs/api.md` to it, so none of them can drift from the others.

use crate::transport::pipeline::Method;
use crate::transport::pipeline::Scope::*;

/// One `pub const` per RPC and [`ALL`] of them, from one list, so that no
/// method the handlers use can be left out of the table.
macro_rules! methods {
    ($($name:ident = $method:expr;)*) => {
        $(pub const $name: Method = $method;)*

        /// Every RPC, in the order the protos declare them.
        pub const ALL: &[Method] = &[$($name),*];
    };
}

methods! {
    // RubricService
    GET_COMPETENCY = Method::new("ladder.v1.RubricService/GetCompetency", FrameworkRead);
    LIST_COMPETENCIES = Method::new("ladder.v1.RubricService/ListCompetencies", FrameworkRead);
    CREATE_COMPETENCY = Method::new("ladder.v1.RubricService/CreateCompetency", FrameworkWrite).writes();
    UPDATE_COMPETENCY = Method::new("ladder.v1.RubricService/UpdateCompetency", FrameworkWrite).writes();
    DELETE_COMPETENCY = Method::new("ladder.v1.RubricService/DeleteCompetency", FrameworkWrite).writes();
    LIST_TRACKS = Method::new("ladder.v1.RubricService/ListTracks", FrameworkRead);
    GET_ROLE = Method::new("ladder.v1.RubricService/GetRole", FrameworkRead);
    LIST_ROLES = Method::new("ladder.v1.RubricService/ListRoles", FrameworkRead);
    CREATE_ROLE = Method::new("ladder.v1.RubricService/CreateRole", FrameworkWrite).writes();
    UPDATE_ROLE = Method::new("ladder.v1.RubricService/UpdateRole", FrameworkWrite).writes();
    DELETE_ROLE = Method::new("ladder.v1.RubricService/DeleteRole", FrameworkWrite).writes();
    GET_RUBRIC = Method::new("ladder.v1.RubricService/GetRubric", FrameworkRead);
    LIST_RUBRICS = Method::new("ladder.v1.RubricService/ListRubrics", FrameworkRead);
    CREATE_RUBRIC = Method::new("ladder.v1.RubricService/CreateRubric", FrameworkWrite).writes();
    UPDATE_RUBRIC = Method::new("ladder.v1.RubricService/UpdateRubric", FrameworkWrite).writes();
    DELETE_RUBRIC = Method::new("ladder.v1.RubricService/DeleteRubric", FrameworkWrite).writes();
    PUBLISH_RUBRIC = Method::new("ladder.v1.RubricService/PublishRubric", FrameworkWrite).writes();
    RETIRE_RUBRIC = Method::new("ladder.v1.RubricService/RetireRubric", FrameworkWrite).writes();
    // FrameworkService
    IMPORT_FRAMEWORK = Method::new("ladder.v1.FrameworkService/ImportFramework", FrameworkWrite).sets_up_framework().writes();
    EXPORT_FRAMEWORK = Method::new("ladder.v1.FrameworkService/ExportFramework", FrameworkRead);
    // AssessmentService
    BATCH_CREATE_EVIDENCE = Method::new("ladder.v1.AssessmentService/BatchCreateEvidence", EvidenceWrite).writes();
    GET_EVIDENCE = Method::new("ladder.v1.AssessmentService/GetEvidence", EvidenceRead);
    LIST_EVIDENCE = Method::new("ladder.v1.AssessmentService/ListEvidence", EvidenceRead);
    DELETE_EVIDENCE = Method::new("ladder.v1.AssessmentService/DeleteEvidence", EvidenceWrite).writes();
    UPDATE_EVIDENCE = Method::new("ladder.v1.AssessmentService/UpdateEvidence", EvidenceWrite).writes();
    GET_SUBJECT = Method::new("ladder.v1.AssessmentService/GetSubject", EvidenceRead);
    UPDATE_SUBJECT = Method::new("ladder.v1.AssessmentService/UpdateSubject", EvidenceWrite).writes();
    BATCH_UPDATE_SUBJECTS = Method::new("ladder.v1.AssessmentService/BatchUpdateSubjects", EvidenceWrite).writes();
    LIST_SUBJECTS = Method::new("ladder.v1.AssessmentService/ListSubjects", EvidenceRead);
    GET_SCORING_POLICY = Method::new("ladder.v1.AssessmentService/GetScoringPolicy", Assess);
    UPDATE_SCORING_POLICY = Method::new("ladder.v1.AssessmentService/UpdateScoringPolicy", Admin).writes();
    CREATE_ASSESSMENT = Method::new("ladder.v1.AssessmentService/CreateAssessment", Assess).writes();
    GET_ASSESSMENT = Method::new("ladder.v1.AssessmentService/GetAssessment", Assess);
    LIST_ASSESSMENTS = Method::new("ladder.v1.AssessmentService/ListAssessments", Assess);
    // RecommendationService
    RECOMMEND = Method::new("ladder.v1.RecommendationService/Recommend", Assess);
    WHAT_IF = Method::new("ladder.v1.RecommendationService/WhatIf", Assess);
    // CalibrationService
    RUN_CALIBRATION = Method::new("ladder.v1.CalibrationService/RunCalibration", Admin).writes();
    GET_CALIBRATION = Method::new("ladder.v1.CalibrationService/GetCalibration", Admin);
    LIST_CALIBRATIONS = Method::new("ladder.v1.CalibrationService/ListCalibrations", Admin);
    LIST_RATER_EFFECTS = Method::new("ladder.v1.CalibrationService/ListRaterEffects", Admin);
    // OversightService
    EXPLAIN_ASSESSMENT = Method::new("ladder.v1.OversightService/ExplainAssessment", Assess);
    RECORD_DECISION = Method::new("ladder.v1.OversightService/RecordDecision", Decide).writes();
    LIST_DECISIONS = Method::new("ladder.v1.OversightService/ListDecisions", Decide);
    GET_OVERSIGHT_REPORT = Method::new("ladder.v1.OversightService/GetOversightReport", Admin);
    // It appends an audit row of its own.
    COMPUTE_IMPACT_REPORT = Method::new("ladder.v1.OversightService/ComputeImpactReport", Admin).on_primary();
    // AuditService
    LIST_AUDIT_EVENTS = Method::new("ladder.v1.AuditService/ListAuditEvents", Admin);
    // SubjectRightsService
    EXPORT_SUBJECT_DATA = Method::new("ladder.v1.SubjectRightsService/ExportSubjectData", Admin);
    ERASE_SUBJECT = Method::new("ladder.v1.SubjectRightsService/EraseSubject", Admin).writes();
    // XapiService
    IMPORT_STATEMENTS = Method::new("ladder.v1.XapiService/ImportStatements", EvidenceWrite).writes();
}
