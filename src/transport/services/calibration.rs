//! `ladder.v1.CalibrationService`: rater calibration runs (SPEC §10), all in
//! the admin scope. Every method: parse the request, call storage or
//! `usecases::calibration`, convert the answer (see `transport::pipeline`).

use tonic::{Request, Response, Status};

use crate::domain::scoring::{MAX_CALIBRATION_WINDOW_DAYS, MAX_WEIGHT};
use crate::domain::validation::Violations;
use crate::proto::v1 as pb;
use crate::proto::v1::calibration_service_server::CalibrationService;
use crate::storage::audit::Resources;
use crate::storage::calibrations::{self, CalibrationKey, RaterEffectKey};
use crate::transport::AppState;
use crate::transport::convert::assessment::uuid;
use crate::transport::convert::calibration::{effect_order, effect_to_proto, run_to_proto};
use crate::transport::convert::page::Page;
use crate::transport::convert::time;
use crate::transport::methods;
use crate::usecases::calibration::{self, CalibrationSpec};

#[derive(Debug, Clone)]
pub struct CalibrationApi {
    state: AppState,
}

impl CalibrationApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// A run's parameters; those left out come from the tenant's policy later.
fn spec_from_proto(req: &pb::RunCalibrationRequest) -> Result<CalibrationSpec, Violations> {
    let mut v = Violations::new();
    let as_of = time::as_of(req.as_of.as_ref())
        .map_err(|err| v.0.extend(err.0))
        .ok();
    let window_days = req
        .window_days
        .map(|days| {
            u32::try_from(days)
                .ok()
                .filter(|d| (1..=MAX_CALIBRATION_WINDOW_DAYS).contains(d))
                .ok_or_else(|| {
                    v.add(
                        "window_days",
                        "must be a whole number of days from 1 to 36500",
                    )
                })
        })
        .transpose()
        .ok()
        .flatten();
    let rater_prior_strength = req.rater_prior_strength.filter(|&lambda| {
        let valid = lambda > 0.0 && lambda <= MAX_WEIGHT;
        if !valid {
            v.add(
                "rater_prior_strength",
                "must be greater than 0 and at most 1000000",
            );
        }
        valid
    });
    let spec = as_of.map(|as_of| CalibrationSpec {
        as_of,
        window_days,
        rater_prior_strength,
    });
    match spec {
        Some(spec) if v.0.is_empty() => Ok(spec),
        _ => Err(v),
    }
}

#[tonic::async_trait]
impl CalibrationService for CalibrationApi {
    async fn run_calibration(
        &self,
        request: Request<pb::RunCalibrationRequest>,
    ) -> Result<Response<pb::RunCalibrationResponse>, Status> {
        self.state
            .in_transaction(
                methods::RUN_CALIBRATION,
                request,
                |req| Ok(spec_from_proto(&req)?),
                async |caller, tx, spec| {
                    let run = calibration::run(tx, &caller.tenant, &spec).await?;
                    tx.audit(Resources::one(format!("calibrations/{}", run.id)));
                    Ok(pb::RunCalibrationResponse {
                        calibration: Some(run_to_proto(&run)),
                    })
                },
            )
            .await
    }

    async fn get_calibration(
        &self,
        request: Request<pb::GetCalibrationRequest>,
    ) -> Result<Response<pb::GetCalibrationResponse>, Status> {
        self.state
            .in_transaction(
                methods::GET_CALIBRATION,
                request,
                |req| Ok(uuid(&req.calibration_id, "calibration_id")?),
                async |caller, tx, id| {
                    let run = calibrations::get(tx, &caller.tenant, id).await?;
                    Ok(pb::GetCalibrationResponse {
                        calibration: Some(run_to_proto(&run)),
                    })
                },
            )
            .await
    }

    async fn list_calibrations(
        &self,
        request: Request<pb::ListCalibrationsRequest>,
    ) -> Result<Response<pb::ListCalibrationsResponse>, Status> {
        self.state
            .in_transaction(
                methods::LIST_CALIBRATIONS,
                request,
                |req| Ok(Page::<CalibrationKey>::parse(&req)?),
                async |caller, tx, page| {
                    let (runs, next_page_token) = page
                        .fetch(
                            &self.state,
                            &caller.tenant,
                            tx,
                            async |tx, before, limit| {
                                calibrations::list(tx, &caller.tenant, before, limit).await
                            },
                            |run| (run.create_time, run.id),
                        )
                        .await?;
                    Ok(pb::ListCalibrationsResponse {
                        calibrations: runs.iter().map(run_to_proto).collect(),
                        next_page_token,
                    })
                },
            )
            .await
    }

    async fn list_rater_effects(
        &self,
        request: Request<pb::ListRaterEffectsRequest>,
    ) -> Result<Response<pb::ListRaterEffectsResponse>, Status> {
        self.state
            .in_transaction(
                methods::LIST_RATER_EFFECTS,
                request,
                |req| {
                    let mut v = Violations::new();
                    let id = uuid(&req.calibration_id, "calibration_id")
                        .map_err(|e| v.0.extend(e.0))
                        .ok();
                    let page = effect_order(&req.order_by)
                        .and_then(|order| Ok((order, Page::parse(&req)?)))
                        .map_err(|e| v.0.extend(e.0))
                        .ok();
                    match (id, page) {
                        (Some(id), Some((order, page))) if v.0.is_empty() => Ok((id, order, page)),
                        _ => Err(v.into()),
                    }
                },
                async |caller, tx, (id, order, page)| {
                    let tenant = &caller.tenant;
                    // Another tenant's calibration, or none: NOT_FOUND, not an empty page.
                    calibrations::get(tx, tenant, id).await?;
                    let (effects, next_page_token) = page
                        .fetch(
                            &self.state,
                            &caller.tenant,
                            tx,
                            async |tx, after, limit| {
                                calibrations::list_effects(tx, tenant, id, order, after, limit)
                                    .await
                            },
                            |effect| RaterEffectKey::of(order, effect),
                        )
                        .await?;
                    Ok(pb::ListRaterEffectsResponse {
                        rater_effects: effects.iter().map(effect_to_proto).collect(),
                        next_page_token,
                    })
                },
            )
            .await
    }
}
