//! `ladder calibrate`: runs a rater calibration on a running server and
//! prints its most lenient and most severe raters with their uncertainty.

use crate::app::client::{Clients, call_failed};
use crate::app::error::AppError;
use crate::proto::v1 as pb;

/// Rater effects asked for per page (the server's largest page).
const PAGE_SIZE: i32 = 1000;

/// Runs one calibration with the given parameters (the tenant policy's
/// defaults for those left out).
pub async fn run(
    clients: &mut Clients,
    request: pb::RunCalibrationRequest,
) -> Result<pb::Calibration, AppError> {
    Ok(clients
        .calibration
        .run_calibration(request)
        .await
        .map_err(call_failed)?
        .into_inner()
        .calibration
        .unwrap_or_default())
}

/// Every rater effect of a calibration, in rater id order.
pub async fn effects(
    clients: &mut Clients,
    calibration_id: &str,
) -> Result<Vec<pb::RaterEffect>, AppError> {
    let mut effects = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = clients
            .calibration
            .list_rater_effects(pb::ListRaterEffectsRequest {
                calibration_id: calibration_id.to_string(),
                page_size: PAGE_SIZE,
                page_token,
                order_by: "rater_id".into(),
            })
            .await
            .map_err(call_failed)?
            .into_inner();
        effects.extend(page.rater_effects);
        if page.next_page_token.is_empty() {
            return Ok(effects);
        }
        page_token = page.next_page_token;
    }
}

/// The calibration's figures, then up to `shown` raters rating higher than
/// their co-raters (b_r > 0, largest first) and as many rating lower.
pub fn report(calibration: &pb::Calibration, effects: &[pb::RaterEffect], shown: usize) -> String {
    let mut out = format!(
        "calibration {} as of {} (window {} days, prior strength λ = {})\n\
         {} ratings by {} raters of {} people ({} cells); residual scale s = {:.3}\n",
        calibration.id,
        calibration.as_of.map(|t| t.to_string()).unwrap_or_default(),
        calibration.window_days,
        calibration.rater_prior_strength,
        calibration.rating_count,
        calibration.rater_count,
        calibration.subject_count,
        calibration.cell_count,
        calibration.residual_scale,
    );
    let mut by_leniency: Vec<&pb::RaterEffect> = effects.iter().collect();
    by_leniency.sort_by(|a, b| b.leniency.total_cmp(&a.leniency));
    let lenient = by_leniency.iter().filter(|e| e.leniency > 0.0).take(shown);
    let severe = by_leniency
        .iter()
        .rev()
        .filter(|e| e.leniency < 0.0)
        .take(shown);
    for (title, raters) in [
        ("most lenient", lenient.collect::<Vec<_>>()),
        ("most severe", severe.collect()),
    ] {
        out.push_str(&format!(
            "\n{title:<24} {:>16} {:>8} {:>9} {:>10}\n",
            "b_r ± se_r", "k_r", "ω_r", "overlap_r"
        ));
        if raters.is_empty() {
            out.push_str("  (none)\n");
        }
        for e in raters {
            out.push_str(&format!(
                "{:<24} {:>+7.3} ± {:<6.3} {:>8} {:>9.2} {:>10}\n",
                e.rater_id, e.leniency, e.standard_error, e.rating_count, e.weight, e.overlap
            ));
        }
    }
    let unanchored = effects.iter().filter(|e| e.overlap == 0).count();
    if unanchored > 0 {
        out.push_str(&format!(
            "\n{unanchored} rater(s) share no rated cell with another rater: their b_r is 0 \
             (nothing to compare with)\n"
        ));
    }
    out.push_str(
        "\nb_r is in levels (positive: rates higher than other raters of the same people); \
         a b_r within about 2·se_r of 0 is not distinguishable from none.\n",
    );
    out
}
