//! The one path every RPC takes. A handler names its method and hands over
//! two functions: `parse`, which turns the request message into validated
//! input (pure: no I/O), and `body`, which does the work on the caller's
//! tenant and returns the response message. The pipeline does the rest, in
//! this order:
//!
//! 1. takes the [`Principal`] the auth layer attached (authentication);
//! 2. observes the call ([`AppState::observe`]): opens its `rpc` span (the
//!    OpenTelemetry RPC conventions, joined to the caller's trace; `tenant`
//!    the caller's tenant; subject data is never a field) and counts and
//!    times it (`transport::metrics`);
//! 3. parses the request: a bad one is refused before anything is read or
//!    written;
//! 4. provisions the tenant's built-in framework, once per tenant and process
//!    (except for a framework import, which sets the framework up itself);
//! 5. runs the body in a transaction committed when it returns `Ok` and
//!    rolled back when it fails ([`AppState::in_transaction`]), or on a plain
//!    pooled connection for the scoring path ([`AppState::on_connection`]);
//! 6. maps the error to a `Status`, once, inside the span, and records the
//!    status code on the span and in the metrics.
//!
//! All of it runs within the call's [`Deadline`] (set by the admission
//! layer): at the deadline the call answers DEADLINE_EXCEEDED, and the
//! database statements, given the remaining time as `statement_timeout`,
//! stop with it.
//!
//! What every call needs from now on (scope checks, deadlines, limits,
//! metrics) goes into [`AppState::serve`], the step all calls share.

use std::time::Instant;

use tonic::{Request, Response, Status};

use crate::storage::{PooledConnection, TenantTx};
use crate::transport::AppState;
use crate::transport::auth::Principal;
use crate::transport::error::ApiError;
use crate::transport::limits::Deadline;

/// What a method requires of its caller's token (SPEC §8, one scope per
/// method family). Every method names its scope; checking the token's
/// scopes against it belongs to the security work and is not done yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Get and list competencies, roles, rubrics.
    FrameworkRead,
    /// Create, update, delete, publish, retire them; framework import.
    FrameworkWrite,
    /// Get and list evidence; get subjects.
    EvidenceRead,
    /// Ingest and delete evidence; set a subject's current role.
    EvidenceWrite,
    /// Create, get and list assessments; recommend; what-if; read the
    /// scoring policy.
    Assess,
    /// Record and list human decisions.
    Decide,
    /// Everything, plus the scoring policy and subject export and erase.
    Admin,
}

impl Scope {
    /// The scope as tokens carry it (`framework:read`).
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::FrameworkRead => "framework:read",
            Scope::FrameworkWrite => "framework:write",
            Scope::EvidenceRead => "evidence:read",
            Scope::EvidenceWrite => "evidence:write",
            Scope::Assess => "assess",
            Scope::Decide => "decide",
            Scope::Admin => "admin",
        }
    }
}

/// One RPC as the pipeline knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Method {
    /// The full gRPC name, `ladder.v1.RubricService/GetRole`.
    pub name: &'static str,
    pub scope: Scope,
    /// Whether a new tenant gets the built-in framework before the call.
    pub loads_builtin: bool,
}

impl Method {
    pub const fn new(name: &'static str, scope: Scope) -> Self {
        Self {
            name,
            scope,
            loads_builtin: true,
        }
    }

    /// A call that sets up the tenant's framework itself (a framework
    /// import): a new tenant starts from what it imports, not from the
    /// built-in framework with the import on top.
    pub const fn sets_up_framework(self) -> Self {
        Self {
            loads_builtin: false,
            ..self
        }
    }

    /// The service's full name, `ladder.v1.RubricService`.
    pub fn service(&self) -> &'static str {
        self.name.split_once('/').map_or("", |(service, _)| service)
    }

    /// The method's name in its service, `GetRole`.
    pub fn short_name(&self) -> &'static str {
        self.name
            .split_once('/')
            .map_or(self.name, |(_, method)| method)
    }
}

impl AppState {
    /// Serves a call whose body runs in one transaction of the caller's
    /// tenant: committed when the body returns `Ok`, rolled back otherwise.
    pub async fn in_transaction<Req, Input, Res>(
        &self,
        method: Method,
        request: Request<Req>,
        parse: impl FnOnce(Req) -> Result<Input, ApiError>,
        body: impl AsyncFnOnce(&Principal, &mut TenantTx, Input) -> Result<Res, ApiError>,
    ) -> Result<Response<Res>, Status> {
        self.serve(
            method,
            request,
            parse,
            async |caller: &Principal, input: Input, deadline: Deadline| {
                let mut tx = self
                    .db
                    .begin_within(&caller.tenant, Some(deadline.remaining()))
                    .await?;
                match body(caller, &mut tx, input).await {
                    Ok(response) => {
                        tx.commit().await?;
                        Ok(response)
                    }
                    Err(err) => {
                        if let Err(rollback) = tx.rollback().await {
                            tracing::warn!(error = %rollback, "rolling back a failed call");
                        }
                        Err(err)
                    }
                }
            },
        )
        .await
    }

    /// Serves a call whose body runs on a pooled connection outside any
    /// explicit transaction: the scoring path, whose statements each stand
    /// alone (see `storage`'s module documentation).
    pub async fn on_connection<Req, Input, Res>(
        &self,
        method: Method,
        request: Request<Req>,
        parse: impl FnOnce(Req) -> Result<Input, ApiError>,
        body: impl AsyncFnOnce(&Principal, &mut PooledConnection, Input) -> Result<Res, ApiError>,
    ) -> Result<Response<Res>, Status> {
        self.serve(
            method,
            request,
            parse,
            async |caller: &Principal, input: Input, deadline: Deadline| {
                let mut conn = self.db.connection(deadline.remaining()).await?;
                body(caller, &mut conn, input).await
            },
        )
        .await
    }

    /// What every call goes through, whatever its body runs on.
    async fn serve<Req, Input, Res>(
        &self,
        method: Method,
        request: Request<Req>,
        parse: impl FnOnce(Req) -> Result<Input, ApiError>,
        run: impl AsyncFnOnce(&Principal, Input, Deadline) -> Result<Res, ApiError>,
    ) -> Result<Response<Res>, Status> {
        let caller = Principal::of(&request)?.clone();
        let deadline = request
            .extensions()
            .get::<Deadline>()
            .copied()
            .unwrap_or_else(|| {
                Deadline::of(
                    &http::HeaderMap::new(),
                    Instant::now(),
                    self.limits.default_deadline,
                )
            });
        let call = self.observe(method, &caller.tenant, request.metadata());
        call.run(async {
            // Dropping the call at its deadline ends its work here; its
            // statements were given the same deadline (`statement_timeout`),
            // so the database stops too.
            let work = async {
                let input = parse(request.into_inner())?;
                if method.loads_builtin {
                    self.provision(&caller.tenant).await?;
                }
                run(&caller, input, deadline).await
            };
            let result = tokio::time::timeout(deadline.remaining(), work)
                .await
                .unwrap_or_else(|_| {
                    Err(ApiError::DeadlineExceeded {
                        budget_ms: deadline.budget().as_millis(),
                    })
                });
            result.map(Response::new).map_err(Status::from)
        })
        .await
    }
}
