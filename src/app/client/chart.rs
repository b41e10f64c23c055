//! A radar chart of estimated against expected level per competency, so a
//! person can look rather than read: labelled rings, the estimate with its
//! 80% interval as a band, and the competencies without enough evidence drawn
//! hollow and dashed, since their "estimate" is only the prior; the others
//! are labelled strength or gap as recommendations list them.

use std::path::Path;

use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::app::error::AppError;
use crate::domain::recommend::CONFIDENT;
use crate::proto::v1 as pb;

const WIDTH: u32 = 1000;
const HEIGHT: u32 = 900;
const CENTRE: (f64, f64) = (500.0, 420.0);
/// Pixels from the centre to the level-5 ring.
const RADIUS: f64 = 250.0;
const MAX_LEVEL: f64 = 5.0;
/// The band may reach a little beyond level 5, where a high estimate's upper bound lies.
const MAX_DRAWN_LEVEL: f64 = 5.5;
/// Φ⁻¹(0.9): m ± z·sd holds 80% of the estimate's normal posterior.
const INTERVAL_80_Z: f64 = 1.281_551_565_544_600_4;

const GRID: RGBColor = RGBColor(205, 205, 205);
const EXPECTED: RGBColor = RGBColor(31, 94, 180);
const ESTIMATED: RGBColor = RGBColor(200, 40, 40);
const UNTESTED: RGBColor = RGBColor(140, 140, 140);

type Point = (i32, i32);

fn angle(axis: usize, axes: usize) -> f64 {
    std::f64::consts::TAU * axis as f64 / axes as f64 - std::f64::consts::FRAC_PI_2
}

fn point(axis: usize, axes: usize, level: f64) -> Point {
    let r = RADIUS * level.clamp(0.0, MAX_DRAWN_LEVEL) / MAX_LEVEL;
    let a = angle(axis, axes);
    (
        (CENTRE.0 + r * a.cos()).round() as i32,
        (CENTRE.1 + r * a.sin()).round() as i32,
    )
}

fn ring(axes: usize, level: impl Fn(usize) -> f64) -> Vec<Point> {
    let mut points: Vec<Point> = (0..axes).map(|i| point(i, axes, level(i))).collect();
    points.push(points[0]);
    points
}

/// Whether the competency's estimate rests on enough evidence to be a measurement.
fn evidenced(c: &pb::CompetencyAssessment) -> bool {
    c.status != pb::CompetencyStatus::InsufficientEvidence as i32
}

fn font(size: u32, color: &RGBColor) -> TextStyle<'static> {
    ("sans-serif", size).into_font().color(color)
}

/// Draws the chart of `assessment` against the role named `role_name` as SVG at `path`.
pub fn radar(assessment: &pb::Assessment, role_name: &str, path: &Path) -> Result<(), AppError> {
    let failed = |e: String| AppError::Config(format!("drawing {}: {e}", path.display()));
    let competencies = &assessment.competencies;
    let axes = competencies.len();
    if axes < 3 {
        return Err(failed(
            "a radar chart needs at least three competencies".into(),
        ));
    }
    let root = SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    let drawn = |r: Result<(), DrawingAreaErrorKind<_>>| r.map_err(|e| failed(e.to_string()));
    drawn(root.fill(&WHITE))?;

    // Grid: rings 1-5, labelled along the first axis, and one spoke per competency.
    for level in 1..=5 {
        drawn(root.draw(&PathElement::new(ring(axes, |_| f64::from(level)), GRID)))?;
        let (x, y) = point(0, axes, f64::from(level));
        drawn(root.draw(&Text::new(
            level.to_string(),
            (x + 5, y - 2),
            font(12, &UNTESTED).pos(Pos::new(HPos::Left, VPos::Bottom)),
        )))?;
    }
    for (i, c) in competencies.iter().enumerate() {
        drawn(root.draw(&PathElement::new(
            vec![point(i, axes, 0.0), point(i, axes, MAX_LEVEL)],
            GRID,
        )))?;
        let a = angle(i, axes);
        let horizontal = match a.cos() {
            x if x > 0.2 => HPos::Left,
            x if x < -0.2 => HPos::Right,
            _ => HPos::Center,
        };
        let vertical = match a.sin() {
            y if y > 0.2 => VPos::Top,
            y if y < -0.2 => VPos::Bottom,
            _ => VPos::Center,
        };
        let (x, y) = point(i, axes, MAX_DRAWN_LEVEL + 0.35);
        let name = if c.critical {
            format!("{} *", c.competency_id)
        } else {
            c.competency_id.clone()
        };
        let (color, note) = if evidenced(c) {
            // SPEC §5's reading of an evidenced competency, as the
            // recommendation lists it.
            let reading = if c.probability >= CONFIDENT {
                "strength"
            } else {
                "gap"
            };
            (BLACK, format!("expected {}, {reading}", c.expected_level))
        } else {
            (UNTESTED, "not yet evidenced".to_string())
        };
        // The second line sits below the first unless the label hangs above the chart.
        let (first, second) = match vertical {
            VPos::Bottom => ((x, y - 15), (x, y)),
            _ => ((x, y), (x, y + 15)),
        };
        let anchor = Pos::new(horizontal, vertical);
        drawn(root.draw(&Text::new(name, first, font(14, &color).pos(anchor))))?;
        drawn(root.draw(&Text::new(note, second, font(11, &UNTESTED).pos(anchor))))?;
    }

    // The 80% interval as a band: the outer ring, then the inner one backwards.
    let upper = ring(axes, |i| {
        competencies[i].estimated_level + INTERVAL_80_Z * competencies[i].standard_deviation
    });
    let lower = ring(axes, |i| {
        competencies[i].estimated_level - INTERVAL_80_Z * competencies[i].standard_deviation
    });
    let band: Vec<Point> = upper.iter().chain(lower.iter().rev()).copied().collect();
    drawn(root.draw(&Polygon::new(band, ESTIMATED.mix(0.13))))?;

    let expected = ring(axes, |i| f64::from(competencies[i].expected_level));
    drawn(root.draw(&PathElement::new(expected, EXPECTED.stroke_width(3))))?;

    // The estimate: solid between measured competencies, dashed where either end is only the prior.
    let estimate = ring(axes, |i| competencies[i].estimated_level);
    for i in 0..axes {
        let ends = [estimate[i], estimate[i + 1]];
        if evidenced(&competencies[i]) && evidenced(&competencies[(i + 1) % axes]) {
            drawn(root.draw(&PathElement::new(ends, ESTIMATED.stroke_width(2))))?;
        } else {
            drawn(root.draw(&DashedPathElement::new(
                ends,
                6,
                5,
                UNTESTED.stroke_width(2),
            )))?;
        }
    }
    for (i, c) in competencies.iter().enumerate() {
        let marker = if evidenced(c) {
            Circle::new(estimate[i], 5, ESTIMATED.filled())
        } else {
            Circle::new(estimate[i], 6, UNTESTED.stroke_width(2))
        };
        drawn(root.draw(&marker))?;
    }

    let as_of = assessment.as_of.map(|t| t.to_string()).unwrap_or_default();
    drawn(root.draw(&Text::new(
        format!(
            "{role_name} ({}, rubric v{})",
            assessment.role_id, assessment.rubric_version
        ),
        (24, 16),
        font(22, &BLACK),
    )))?;
    drawn(root.draw(&Text::new(
        format!(
            "{} as of {as_of}: readiness {:.2}, coverage {:.2}, band {}",
            assessment.subject_id,
            assessment.readiness,
            assessment.coverage,
            crate::app::client::report::band_name(assessment.band)
        ),
        (24, 46),
        font(15, &BLACK),
    )))?;
    legend(&root, &drawn)?;
    root.present().map_err(|e| failed(e.to_string()))
}

fn legend<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    drawn: &impl Fn(Result<(), DrawingAreaErrorKind<DB::ErrorType>>) -> Result<(), AppError>,
) -> Result<(), AppError> {
    let (x, top) = (24, HEIGHT as i32 - 118);
    let entries: [&str; 5] = [
        "expected level (the role's rubric)",
        "estimated level, from evidence",
        "80% interval of the estimate (m ± 1.28 sd)",
        "not yet evidenced: only the prior (level 3), not a measurement",
        "rings: levels 1-5;  * critical competency",
    ];
    for (row, label) in entries.iter().enumerate() {
        let y = top + 22 * row as i32;
        let sample = [(x, y), (x + 36, y)];
        match row {
            0 => drawn(root.draw(&PathElement::new(sample, EXPECTED.stroke_width(3))))?,
            1 => {
                drawn(root.draw(&PathElement::new(sample, ESTIMATED.stroke_width(2))))?;
                drawn(root.draw(&Circle::new((x + 18, y), 5, ESTIMATED.filled())))?;
            }
            2 => drawn(root.draw(&Rectangle::new(
                [(x, y - 7), (x + 36, y + 7)],
                ESTIMATED.mix(0.13).filled(),
            )))?,
            3 => {
                drawn(root.draw(&DashedPathElement::new(
                    sample,
                    6,
                    5,
                    UNTESTED.stroke_width(2),
                )))?;
                drawn(root.draw(&Circle::new((x + 18, y), 6, UNTESTED.stroke_width(2))))?;
            }
            _ => {}
        }
        drawn(root.draw(&Text::new(
            label.to_string(),
            (x + 48, y),
            font(13, &BLACK).pos(Pos::new(HPos::Left, VPos::Center)),
        )))?;
    }
    Ok(())
}
