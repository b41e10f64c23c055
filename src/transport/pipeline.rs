//! The one path every RPC takes. A handler names its method and hands over
//! two functions: `parse`, which turns the request message into validated
//! input (pure: no I/O), and `body`, which does the work on the caller's
//! tenant and returns the response message. The pipeline does the rest, in
//! this order:
//!
//! 1. takes the [`Principal`] the auth layer attached (authentication) and
//!    refuses it with PERMISSION_DENIED, naming the scope, unless its token
//!    holds the method's [`Scope`] (or `admin`): before any SQL;
//! 2. opens a `tracing` span for the call: `otel.name` and `rpc.method` are
//!    the method's full name, `tenant` the caller's tenant; subject data is
//!    never a field;
//! 3. parses the request: a bad one is refused before anything is read or
//!    written;
//! 4. provisions the tenant's built-in framework, once per tenant and process;
//! 5. runs the body in a transaction committed when it returns `Ok` and
//!    rolled back when it fails ([`AppState::in_transaction`]), or on a plain
//!    pooled connection for the scoring path ([`AppState::on_connection`]);
//! 6. maps the error to a `Status`, once, inside the span.
//!
//! What every call needs from now on (deadlines, limits, metrics) goes into
//! [`AppState::serve`], the step all calls share.

use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::storage::{TenantConnection, TenantTx};
use crate::transport::AppState;
use crate::transport::auth::Principal;
use crate::transport::error::ApiError;

/// What a method requires of its caller's token (SPEC §8, one scope per
/// method family). The pipeline checks it before anything else runs; a
/// token holding `admin` holds every scope.
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
    /// Every scope, `admin` last.
    pub const ALL: [Scope; 7] = [
        Scope::FrameworkRead,
        Scope::FrameworkWrite,
        Scope::EvidenceRead,
        Scope::EvidenceWrite,
        Scope::Assess,
        Scope::Decide,
        Scope::Admin,
    ];

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
}

impl Method {
    pub const fn new(name: &'static str, scope: Scope) -> Self {
        Self { name, scope }
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
            async |caller: &Principal, input: Input| {
                let mut tx = self.db.begin(&caller.tenant).await?;
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
        body: impl AsyncFnOnce(&Principal, &mut TenantConnection, Input) -> Result<Res, ApiError>,
    ) -> Result<Response<Res>, Status> {
        self.serve(
            method,
            request,
            parse,
            async |caller: &Principal, input: Input| {
                let mut conn = self.db.connection(&caller.tenant).await?;
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
        run: impl AsyncFnOnce(&Principal, Input) -> Result<Res, ApiError>,
    ) -> Result<Response<Res>, Status> {
        let caller = Principal::of(&request)?.clone();
        // Authorization: the scope check, before anything reads or writes.
        if !caller.holds(method.scope) {
            return Err(ApiError::MissingScope(method.scope).into());
        }
        let span = tracing::info_span!(
            "rpc",
            otel.name = method.name,
            rpc.method = method.name,
            scope = method.scope.as_str(),
            tenant = %caller.tenant.0,
        );
        async {
            let result = async {
                let input = parse(request.into_inner())?;
                self.provision(&caller.tenant).await?;
                run(&caller, input).await
            }
            .await;
            result.map(Response::new).map_err(Status::from)
        }
        .instrument(span)
        .await
    }
}
