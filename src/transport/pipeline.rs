//! The one path every RPC takes. A handler names its method (its entry in
//! `transport::methods`) and hands over two functions: `parse`, which turns
//! the request message into validated input (pure: no I/O), and `body`,
//! which does the work on the caller's tenant and returns the response
//! message. The pipeline does the rest, in
//! this order:
//!
//! 1. takes the [`Principal`] the auth layer attached (authentication);
//! 2. observes the call ([`AppState::observe`]): opens its `rpc` span (the
//!    OpenTelemetry RPC conventions, joined to the caller's trace; `tenant`
//!    the caller's tenant; subject data is never a field) and counts and
//!    times it (`transport::metrics`);
//! 3. refuses it with PERMISSION_DENIED, naming the scope, unless its token
//!    holds the method's [`Scope`] (or `admin`): before any SQL;
//! 4. parses the request: a bad one is refused before anything is read or
//!    written, naming every bad field: a field its protos annotate REQUIRED
//!    left out (`transport::required`), what the handler's `parse` finds,
//!    and strings the codec found unfit (too long, control characters:
//!    `transport::wire`);
//! 5. provisions the tenant's built-in framework, once per tenant and
//!    process (not for a call that sets up the framework itself), on the
//!    primary, and decides where the body's statements go: the read
//!    replica (while one is in use, `storage::replica`) for a read
//!    ([`Method::reads_from`], or what
//!    [`AppState::on_connection_routed`]'s `route` says of the parsed
//!    request), the primary for a write and for a call that has just
//!    provisioned its tenant;
//! 6. runs the body in a transaction committed when it returns `Ok` and
//!    rolled back when it fails ([`AppState::in_transaction`]; a framework
//!    write that commits drops what this server keeps of the framework in
//!    memory), or on a pooled connection for the scoring path, whose
//!    statements set the tenant for their own transactions
//!    ([`AppState::on_connection`]; kept for the next such call when the
//!    body succeeds), or, for a read
//!    answered from memory where it can be, with the database handle
//!    ([`AppState::cached_read`]); a write ([`Method::writes`]) appends its
//!    audit row in that transaction, naming what the body recorded with
//!    `TenantTx::audit` (the scoring path's one write, a stored assessment,
//!    appends it in the statement that stores it); a write whose body fails
//!    is audited with its outcome in a transaction of its own, as a task
//!    that outlives the call, unless it failed as INVALID_ARGUMENT: an
//!    invalid request writes nothing, found so by `parse` or by the body;
//! 7. maps the error to a `Status`, once, inside the span, and records the
//!    status code on the span and in the metrics.
//!
//! All of it runs within the call's [`Deadline`] (set by the admission
//! layer): at the deadline the call answers DEADLINE_EXCEEDED, and the
//! database statements, given the remaining time as their transaction's
//! `statement_timeout` (the scoring read: as `lock_timeout`), stop with it.

use std::sync::OnceLock;
use std::time::Instant;

use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::storage::audit::{self, AuditEntry, Resources};
use crate::storage::{Node, TenantConnection, TenantReads, TenantTx};
use crate::transport::AppState;
use crate::transport::auth::Principal;
use crate::transport::error::ApiError;
use crate::transport::limits::Deadline;
use crate::transport::{required, wire};

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

/// One RPC as the pipeline knows it; every one is in
/// [`crate::transport::methods`], the one table of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Method {
    /// The full gRPC name, `ladder.v1.RubricService/GetRole`.
    pub name: &'static str,
    pub scope: Scope,
    /// Whether the method writes, and so is audited.
    pub writes: bool,
    /// Whether a new tenant gets the built-in framework before the call.
    pub loads_builtin: bool,
    /// Where its statements go: [`Node::Replica`] (the read replica, while
    /// one is in use) for a read, [`Node::Primary`] for a write and for a
    /// read that writes something or must see the latest writes.
    pub reads_from: Node,
}

impl Method {
    /// A method that only reads.
    pub const fn new(name: &'static str, scope: Scope) -> Self {
        Self {
            name,
            scope,
            writes: false,
            loads_builtin: true,
            reads_from: Node::Replica,
        }
    }

    /// The same method, writing: every call appends an audit row, and runs
    /// on the primary.
    pub const fn writes(self) -> Self {
        Self {
            writes: true,
            reads_from: Node::Primary,
            ..self
        }
    }

    /// The same method, on the primary although the pipeline does not
    /// audit it as a write: its body writes something of its own.
    pub const fn on_primary(self) -> Self {
        Self {
            reads_from: Node::Primary,
            ..self
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

/// The longest `x-request-id` kept; a longer one, or one that is not text
/// without control characters (a tab passes for header text), is replaced.
const MAX_REQUEST_ID_LEN: usize = 128;

/// One call as its body sees it: the caller (which it dereferences to) and
/// what the audit log records of the call.
#[derive(Debug, Clone)]
pub struct Call {
    pub principal: Principal,
    pub method: Method,
    /// The client's `x-request-id`, or one made up for the call when the
    /// audit log first asks (most calls write nothing).
    request_id: OnceLock<String>,
}

impl std::ops::Deref for Call {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.principal
    }
}

impl Call {
    fn of<T>(request: &mut Request<T>, method: Method) -> Result<Self, Status> {
        let principal = Principal::take(request)?;
        let request_id = OnceLock::new();
        if let Some(id) = request
            .metadata()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|id| {
                !id.is_empty() && id.len() <= MAX_REQUEST_ID_LEN && !id.contains(char::is_control)
            })
        {
            let _ = request_id.set(id.to_string());
        }
        Ok(Self {
            principal,
            method,
            request_id,
        })
    }

    /// Who is writing, with which call.
    pub fn audit_entry(&self) -> AuditEntry {
        AuditEntry {
            actor: self.principal.subject.clone(),
            method: self.method.name,
            request_id: self
                .request_id
                .get_or_init(|| uuid::Uuid::now_v7().to_string())
                .clone(),
        }
    }
}

impl AppState {
    /// Serves a call whose body runs in one transaction of the caller's
    /// tenant: committed when the body returns `Ok`, rolled back otherwise.
    pub async fn in_transaction<Req: prost::Message, Input, Res>(
        &self,
        method: Method,
        request: Request<Req>,
        parse: impl FnOnce(Req) -> Result<Input, ApiError>,
        body: impl AsyncFnOnce(&Call, &mut TenantTx, Input) -> Result<Res, ApiError>,
    ) -> Result<Response<Res>, Status> {
        self.serve(
            method,
            request,
            parse,
            |_: &Input| method.reads_from,
            async |call: &Call, input: Input, deadline: Deadline, node: Node| {
                let mut tx = self
                    .db
                    .begin_on(node, &call.tenant, Some(deadline.remaining()))
                    .await?;
                match body(call, &mut tx, input).await {
                    Ok(response) => {
                        if call.method.writes {
                            let resources = tx.audited().unwrap_or_default();
                            audit::append(
                                &mut tx,
                                &call.tenant,
                                &call.audit_entry(),
                                &resources,
                                audit::OK,
                            )
                            .await?;
                        }
                        tx.commit().await?;
                        if call.method.scope == Scope::FrameworkWrite {
                            self.db.framework_changed(&call.tenant);
                        }
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
    /// explicit transaction, for the caller's tenant and deadline: the
    /// scoring path, whose statements each stand alone or run in short
    /// transactions of their own (see `storage`'s module documentation).
    pub async fn on_connection<Req: prost::Message, Input, Res>(
        &self,
        method: Method,
        request: Request<Req>,
        parse: impl FnOnce(Req) -> Result<Input, ApiError>,
        body: impl AsyncFnOnce(&Call, &mut TenantConnection, Input) -> Result<Res, ApiError>,
    ) -> Result<Response<Res>, Status> {
        self.on_connection_routed(method, request, parse, |_| method.reads_from, body)
            .await
    }

    /// [`AppState::on_connection`] for a method whose request says where
    /// it may read: `route` tells it from the parsed input (a
    /// `CreateAssessment` with `validate_only` stores nothing, so it reads
    /// from the replica; a stored one reads and writes on the primary).
    pub async fn on_connection_routed<Req: prost::Message, Input, Res>(
        &self,
        method: Method,
        request: Request<Req>,
        parse: impl FnOnce(Req) -> Result<Input, ApiError>,
        route: impl FnOnce(&Input) -> Node,
        body: impl AsyncFnOnce(&Call, &mut TenantConnection, Input) -> Result<Res, ApiError>,
    ) -> Result<Response<Res>, Status> {
        self.serve(
            method,
            request,
            parse,
            route,
            async |call: &Call, input: Input, deadline: Deadline, node: Node| {
                let mut conn = self
                    .db
                    .connection_on(node, &call.tenant, deadline.remaining())
                    .await?;
                let response = body(call, &mut conn, input).await?;
                self.db.finished(conn);
                Ok(response)
            },
        )
        .await
    }

    /// Serves a read that the server may answer from memory, without a
    /// connection: its body gets the caller's tenant's [`TenantReads`]
    /// (`TenantReads::role`) and the call's deadline, for when memory cannot
    /// answer; what memory keeps is read from the primary (a replica could
    /// hand back what a change the server was just told of replaced).
    /// Writes never take this path: they are audited in their transaction.
    pub async fn cached_read<Req: prost::Message, Input, Res>(
        &self,
        method: Method,
        request: Request<Req>,
        parse: impl FnOnce(Req) -> Result<Input, ApiError>,
        body: impl AsyncFnOnce(TenantReads<'_>, Input, Deadline) -> Result<Res, ApiError>,
    ) -> Result<Response<Res>, Status> {
        debug_assert!(!method.writes, "{} writes", method.name);
        self.serve(
            method,
            request,
            parse,
            |_: &Input| Node::Primary,
            async |call: &Call, input: Input, deadline: Deadline, _: Node| {
                body(self.db.reads(&call.tenant), input, deadline).await
            },
        )
        .await
    }

    /// What every call goes through, whatever its body runs on. `route`
    /// says where the parsed request may read; a tenant provisioned by this
    /// very call reads on the primary, which holds what provisioning wrote.
    async fn serve<Req: prost::Message, Input, Res>(
        &self,
        method: Method,
        mut request: Request<Req>,
        parse: impl FnOnce(Req) -> Result<Input, ApiError>,
        route: impl FnOnce(&Input) -> Node,
        run: impl AsyncFnOnce(&Call, Input, Deadline, Node) -> Result<Res, ApiError>,
    ) -> Result<Response<Res>, Status> {
        let call = Call::of(&mut request, method)?;
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
        let observed = self.observe(method, &call.tenant, request.metadata());
        observed
            .run(async {
                // Authorization: the scope check, before anything reads or writes.
                if !call.holds(method.scope) {
                    return Err(ApiError::MissingScope(method.scope).into());
                }
                let parsed = required::parse(method.name, request.into_inner(), parse);
                let input = wire::refuse_unfit_strings(parsed).map_err(Status::from)?;
                let mut node = route(&input);
                // A request of a writing method that may read from the
                // replica (a dry run) writes nothing, so its failure is no
                // failed write to audit.
                let writes = method.writes && node == Node::Primary;
                // Dropping the call at its deadline ends its work here; its
                // statements were given the same deadline (`statement_timeout`),
                // so the database stops too.
                let work = async {
                    if method.loads_builtin && self.provision(&call.tenant).await? {
                        node = Node::Primary;
                    }
                    run(&call, input, deadline, node).await
                };
                let result = tokio::time::timeout(deadline.remaining(), work)
                    .await
                    .unwrap_or_else(|_| {
                        Err(ApiError::DeadlineExceeded {
                            budget_ms: deadline.budget().as_millis(),
                        })
                    });
                let status = match result {
                    Ok(response) => return Ok(Response::new(response)),
                    Err(err) => Status::from(err),
                };
                // A request the body found invalid (a NaN weight in a
                // policy) was never a write: like one refused by `parse`,
                // it leaves no audit row, so invalid requests cannot fill a
                // log nobody may delete.
                if writes && status.code() != tonic::Code::InvalidArgument {
                    let recorded = self.audit_failure(&call, status.code());
                    // A caller told of the failure finds it audited, except
                    // past the deadline: that answer goes at once, before
                    // the caller's own timer ends the call with CANCELLED,
                    // and the row lands just after.
                    if status.code() != tonic::Code::DeadlineExceeded
                        && let Err(e) = recorded.await
                    {
                        tracing::error!(error = %e, "auditing a failed write stopped");
                    }
                }
                Err(status)
            })
            .await
    }

    /// Records a write that failed after its request was accepted, in a
    /// transaction of its own (the write's was rolled back), as a task of
    /// its own, so that it is recorded even when the caller gives up
    /// meanwhile. A failure to record it is logged, and the caller still
    /// gets the write's error.
    fn audit_failure(&self, call: &Call, code: tonic::Code) -> tokio::task::JoinHandle<()> {
        let (db, tenant, entry) = (self.db.clone(), call.tenant.clone(), call.audit_entry());
        let outcome = format!("{code:?}");
        let record = async move {
            let recorded = async {
                let mut tx = db.begin(&tenant).await?;
                audit::append(&mut tx, &tenant, &entry, &Resources::default(), &outcome).await?;
                tx.commit().await
            }
            .await;
            if let Err(e) = recorded {
                tracing::warn!(error = %e, outcome, "auditing a failed write");
            }
        };
        tokio::spawn(record.in_current_span())
    }
}
