//! A radar chart of estimated against expected level per competency, so a
//! person can look rather than read.

use std::path::Path;

use plotters::prelude::*;

use crate::app::error::AppError;
use crate::proto::v1 as pb;

const SIZE: u32 = 720;
const RADIUS: f64 = 250.0;
const MAX_LEVEL: f64 = 5.0;

fn point(axis: usize, axes: usize, level: f64) -> (i32, i32) {
    let angle = std::f64::consts::TAU * axis as f64 / axes as f64 - std::f64::consts::FRAC_PI_2;
    let r = RADIUS * (level.clamp(0.0, MAX_LEVEL) / MAX_LEVEL);
    let c = f64::from(SIZE) / 2.0;
    (
        (c + r * angle.cos()).round() as i32,
        (c + r * angle.sin()).round() as i32,
    )
}

fn ring(axes: usize, level: impl Fn(usize) -> f64) -> Vec<(i32, i32)> {
    let mut points: Vec<(i32, i32)> = (0..axes).map(|i| point(i, axes, level(i))).collect();
    points.push(points[0]);
    points
}

/// Draws the chart of `assessment` as SVG at `path`.
pub fn radar(assessment: &pb::Assessment, path: &Path) -> Result<(), AppError> {
    let failed = |e: String| AppError::Config(format!("drawing {}: {e}", path.display()));
    let competencies = &assessment.competencies;
    let axes = competencies.len();
    if axes < 3 {
        return Err(failed(
            "a radar chart needs at least three competencies".into(),
        ));
    }
    let root = SVGBackend::new(path, (SIZE, SIZE)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| failed(e.to_string()))?;
    let grid = RGBColor(200, 200, 200);
    for level in 1..=5 {
        root.draw(&PathElement::new(ring(axes, |_| f64::from(level)), grid))
            .map_err(|e| failed(e.to_string()))?;
    }
    for (i, c) in competencies.iter().enumerate() {
        root.draw(&PathElement::new(
            vec![point(i, axes, 0.0), point(i, axes, MAX_LEVEL)],
            grid,
        ))
        .map_err(|e| failed(e.to_string()))?;
        let (x, y) = point(i, axes, MAX_LEVEL + 0.45);
        root.draw(&Text::new(
            c.competency_id.clone(),
            (x - 40, y),
            ("sans-serif", 13).into_font().color(&BLACK),
        ))
        .map_err(|e| failed(e.to_string()))?;
    }
    let expected = ring(axes, |i| f64::from(competencies[i].expected_level));
    let estimated = ring(axes, |i| competencies[i].estimated_level);
    root.draw(&Polygon::new(expected.clone(), BLUE.mix(0.15)))
        .map_err(|e| failed(e.to_string()))?;
    root.draw(&PathElement::new(expected, BLUE.stroke_width(2)))
        .map_err(|e| failed(e.to_string()))?;
    root.draw(&Polygon::new(estimated.clone(), RED.mix(0.15)))
        .map_err(|e| failed(e.to_string()))?;
    root.draw(&PathElement::new(estimated, RED.stroke_width(2)))
        .map_err(|e| failed(e.to_string()))?;
    let title = format!(
        "{}: {} (blue expected, red estimated)",
        assessment.subject_id, assessment.role_id
    );
    root.draw(&Text::new(
        title,
        (20, 20),
        ("sans-serif", 16).into_font().color(&BLACK),
    ))
    .map_err(|e| failed(e.to_string()))?;
    root.present().map_err(|e| failed(e.to_string()))
}
