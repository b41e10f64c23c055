//! The demo organisation: ~60 engineers, product and devrel people in nine
//! teams, with two years of evidence from all six sources, generated from a
//! seed so that the same seed always gives the same bytes.
//!
//! Every rating is `true level + the rater's leniency + noise`, rounded to a
//! whole level in 1..=5 (self ratings add `SELF_BIAS` instead of a leniency).
//! The true leniencies are written to `raters.csv`, so that a calibration test
//! can check it finds them. The dates end at `ANCHOR`; `ladder evidence import
//! --shift-dates-to-today` moves them so the latest is today, so the demo
//! never goes stale.
//!
//! This file is a module of the `demo_org` example and of the API tests.

use std::fmt::Write as _;

use chrono::{DateTime, TimeDelta, Utc};

/// The seed of the committed files in `examples/demo/`.
pub const DEFAULT_SEED: u64 = 12;

/// The last day the generated evidence can fall on.
pub const ANCHOR: &str = "2026-06-30T00:00:00Z";

/// What people add to their own level when they rate themselves.
pub const SELF_BIAS: f64 = 0.4;

/// Standard deviation of one rating around `true level + leniency`.
const RATING_NOISE: f64 = 0.45;

/// Days before `ANCHOR` on which each half-yearly review cycle opens.
const CYCLES: [i64; 4] = [600, 415, 230, 45];

/// Cycles (by index) in which the calibration committee sits.
const CALIBRATION_CYCLES: [usize; 2] = [1, 3];

/// The four files the generator writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Demo {
    /// `ladder evidence import` input.
    pub evidence_csv: String,
    /// subject_id, current_role_id, org_unit, manager_id, profile
    /// (`ladder subject import` input).
    pub subjects_csv: String,
    /// rater_id, leniency: the truth a calibration must find.
    pub raters_csv: String,
    /// subject_id, group: made-up groups (nothing real, no protected trait)
    /// for trying `ladder impact`.
    pub labels_csv: String,
}

/// What kind of person a subject is; the levels below are their true ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Clearly ready for Staff Engineer.
    StaffReady,
    /// A senior engineer clearly ready to manage.
    ManagerReady,
    /// A good senior engineer, not yet at staff scope.
    Solid,
    /// Below the senior bar two years ago, close to it now.
    Growing,
    /// Well below staff and management bars.
    Struggling,
    /// Joined three months ago: hardly any evidence yet.
    NewHire,
    /// Strong in the specialism of their current role (SRE, DevOps, payments, product, devrel).
    Specialist,
    /// Already an engineering manager.
    Manager,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::StaffReady => "staff_ready",
            Profile::ManagerReady => "manager_ready",
            Profile::Solid => "solid",
            Profile::Growing => "growing",
            Profile::Struggling => "struggling",
            Profile::NewHire => "new_hire",
            Profile::Specialist => "specialist",
            Profile::Manager => "manager",
        }
    }

    /// The level everything sits at unless `strengths` says otherwise.
    fn base(self) -> f64 {
        match self {
            Profile::StaffReady => 3.7,
            Profile::Manager => 3.5,
            Profile::ManagerReady | Profile::Solid | Profile::NewHire | Profile::Specialist => 3.3,
            Profile::Growing => 2.6,
            Profile::Struggling => 2.3,
        }
    }

    /// Growth in level over the two years.
    fn growth(self) -> f64 {
        match self {
            Profile::Growing => 0.9,
            Profile::Struggling => 0.0,
            _ => 0.2,
        }
    }

    fn strengths(self) -> &'static [(&'static str, f64)] {
        match self {
            Profile::StaffReady => &[
                ("system_design", 4.7),
                ("technical_influence", 4.6),
                ("technical_depth", 4.5),
                ("mentoring", 4.3),
                ("communication", 4.3),
                ("technical_strategy", 4.0),
            ],
            Profile::ManagerReady => &[
                ("people_management", 4.6),
                ("mentoring", 4.6),
                ("communication", 4.2),
                ("collaboration", 4.2),
                ("delivery_coordination", 4.0),
            ],
            Profile::Manager => &[
                ("people_management", 4.3),
                ("mentoring", 4.1),
                ("delivery_coordination", 4.0),
            ],
            Profile::Struggling => &[("system_design", 2.1), ("technical_influence", 1.8)],
            _ => &[],
        }
    }
}

/// What each current role is rated on, most important first.
fn rated_competencies(role: &str, profile: Profile) -> Vec<&'static str> {
    let mut rated: Vec<&'static str> = match role {
        "engineering_manager" => vec![
            "people_management",
            "mentoring",
            "delivery_coordination",
            "communication",
            "collaboration",
            "technical_depth",
            "system_design",
            "production_ownership",
            "technical_strategy",
        ],
        "senior_sre" => vec![
            "production_ownership",
            "infrastructure_operations",
            "system_design",
            "technical_depth",
            "collaboration",
            "communication",
            "technical_influence",
            "mentoring",
        ],
        "senior_devops_engineer" => vec![
            "infrastructure_operations",
            "production_ownership",
            "technical_depth",
            "system_design",
            "collaboration",
            "delivery_coordination",
            "communication",
            "technical_influence",
        ],
        "specialist" => vec![
            "domain_expertise",
            "technical_depth",
            "system_design",
            "communication",
            "customer_engagement",
            "collaboration",
            "mentoring",
            "product_sense",
        ],
        "product_manager" => vec![
            "product_sense",
            "customer_engagement",
            "business_acumen",
            "communication",
            "delivery_coordination",
            "collaboration",
            "technical_depth",
            "technical_strategy",
        ],
        "technical_program_manager" => vec![
            "delivery_coordination",
            "communication",
            "collaboration",
            "technical_depth",
            "system_design",
            "business_acumen",
            "product_sense",
        ],
        "developer_advocate" => vec![
            "advocacy",
            "communication",
            "customer_engagement",
            "technical_depth",
            "product_sense",
            "collaboration",
            "technical_influence",
        ],
        _ => vec![
            "technical_depth",
            "system_design",
            "technical_influence",
            "communication",
            "mentoring",
            "collaboration",
            "production_ownership",
            "technical_strategy",
            "delivery_coordination",
            "product_sense",
        ],
    };
    if profile == Profile::ManagerReady {
        rated.insert(0, "people_management");
    }
    rated
}

/// The specialism a role's specialists are strong in.
fn specialism(role: &str) -> &'static [&'static str] {
    match role {
        "senior_sre" => &["production_ownership", "infrastructure_operations"],
        "senior_devops_engineer" => &["infrastructure_operations", "delivery_coordination"],
        "specialist" => &["domain_expertise", "customer_engagement"],
        "product_manager" => &["product_sense", "customer_engagement", "business_acumen"],
        "technical_program_manager" => &["delivery_coordination", "communication"],
        "developer_advocate" => &["advocacy", "communication", "customer_engagement"],
        _ => &["technical_depth"],
    }
}

/// Competencies an artifact (a design document, a pull request, a talk) shows.
const ARTIFACT_COMPETENCIES: [&str; 6] = [
    "system_design",
    "technical_depth",
    "communication",
    "technical_influence",
    "production_ownership",
    "advocacy",
];

const ARTIFACT_SUMMARIES: [&str; 6] = [
    "Design document reviewed by the architecture forum",
    "Pull request series with benchmarks",
    "Written decision record shared with three teams",
    "Shared library adopted by other teams",
    "Post-incident review with follow-up fixes",
    "Conference talk and blog post",
];

/// SplitMix64: tiny, fast and the same everywhere, which is all a demo needs.
struct Random(u64);

impl Random {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u = 1.0 - self.unit();
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

struct Person {
    id: String,
    role: &'static str,
    org_unit: &'static str,
    profile: Profile,
    /// True level per competency at the start of the two years.
    levels: Vec<(&'static str, f64)>,
    manager: String,
    peers: Vec<String>,
    reports: Vec<String>,
}

impl Person {
    fn level(&self, competency: &str, days_before_anchor: i64) -> f64 {
        let start = self
            .levels
            .iter()
            .find(|(c, _)| *c == competency)
            .map_or(self.profile.base(), |(_, l)| *l);
        let elapsed = (730 - days_before_anchor).clamp(0, 730) as f64 / 730.0;
        start + self.profile.growth() * elapsed
    }
}

/// (team as an org unit path, the team manager's manager (outside the
/// organisation), members by current role and profile)
type Team = (
    &'static str,
    &'static str,
    &'static [(&'static str, Profile)],
);

const SE: &str = "senior_engineer";

const TEAMS: [Team; 9] = [
    (
        "engineering/commerce/payments",
        "dir-eng",
        &[
            (SE, Profile::StaffReady),
            (SE, Profile::Solid),
            (SE, Profile::Solid),
            (SE, Profile::Growing),
            ("specialist", Profile::Specialist),
            (SE, Profile::NewHire),
        ],
    ),
    (
        "engineering/commerce/checkout",
        "dir-eng",
        &[
            (SE, Profile::ManagerReady),
            (SE, Profile::Solid),
            (SE, Profile::Struggling),
            (SE, Profile::Solid),
            (SE, Profile::Growing),
            (SE, Profile::Solid),
        ],
    ),
    (
        "engineering/platform",
        "dir-eng",
        &[
            (SE, Profile::StaffReady),
            ("staff_engineer", Profile::StaffReady),
            (SE, Profile::Solid),
            (SE, Profile::Solid),
            (SE, Profile::Struggling),
            (SE, Profile::NewHire),
        ],
    ),
    (
        "engineering/product/search",
        "dir-eng",
        &[
            (SE, Profile::Solid),
            (SE, Profile::ManagerReady),
            (SE, Profile::Growing),
            (SE, Profile::Solid),
            ("specialist", Profile::Specialist),
            (SE, Profile::Struggling),
        ],
    ),
    (
        "engineering/product/mobile",
        "dir-eng",
        &[
            (SE, Profile::StaffReady),
            (SE, Profile::Solid),
            (SE, Profile::Struggling),
            (SE, Profile::Growing),
            (SE, Profile::Solid),
            (SE, Profile::NewHire),
        ],
    ),
    (
        "engineering/platform/reliability",
        "dir-eng",
        &[
            ("senior_sre", Profile::Specialist),
            ("senior_sre", Profile::Specialist),
            ("senior_sre", Profile::Solid),
            ("senior_sre", Profile::Growing),
            (SE, Profile::ManagerReady),
        ],
    ),
    (
        "engineering/platform/infrastructure",
        "dir-eng",
        &[
            ("senior_devops_engineer", Profile::Specialist),
            ("senior_devops_engineer", Profile::Specialist),
            ("senior_devops_engineer", Profile::Solid),
            (SE, Profile::Struggling),
            (SE, Profile::Solid),
            (SE, Profile::NewHire),
        ],
    ),
    (
        "engineering/data",
        "dir-eng",
        &[
            (SE, Profile::Solid),
            (SE, Profile::Solid),
            (SE, Profile::Growing),
            (SE, Profile::Struggling),
            (SE, Profile::NewHire),
            ("staff_engineer", Profile::Solid),
        ],
    ),
    (
        "product",
        "dir-product",
        &[
            ("product_manager", Profile::Specialist),
            ("product_manager", Profile::Solid),
            ("technical_program_manager", Profile::Specialist),
            ("developer_advocate", Profile::Specialist),
            ("product_manager", Profile::NewHire),
        ],
    ),
];

/// One rating to write: who rated what, from which source, when.
struct Rating<'a> {
    competency: &'a str,
    source: &'a str,
    rater: &'a str,
    days_before: i64,
    minutes: i64,
    confidence: &'a str,
    summary: &'a str,
}

fn timestamp(anchor: DateTime<Utc>, days_before: i64, minutes: i64) -> String {
    (anchor - TimeDelta::days(days_before) + TimeDelta::minutes(minutes))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The organisation for `seed`; the same seed gives the same bytes.
pub fn generate(seed: u64) -> Demo {
    let anchor: DateTime<Utc> = ANCHOR.parse().expect("ANCHOR is RFC 3339");
    let mut random = Random(seed);
    let mut people: Vec<Person> = Vec::new();
    let mut number = 1001;
    let mut next_id = || {
        let id = format!("emp-{number}");
        number += 1;
        id
    };
    for (org_unit, outside_manager, members) in TEAMS {
        // Engineering teams have a manager in the organisation; product reports outside.
        let manager = if outside_manager == "dir-eng" {
            let id = next_id();
            people.push(Person {
                id: id.clone(),
                role: "engineering_manager",
                org_unit,
                profile: Profile::Manager,
                levels: Vec::new(),
                manager: outside_manager.to_string(),
                peers: Vec::new(),
                reports: Vec::new(),
            });
            id
        } else {
            outside_manager.to_string()
        };
        let first = people.len();
        for (role, profile) in members {
            people.push(Person {
                id: next_id(),
                role,
                org_unit,
                profile: *profile,
                levels: Vec::new(),
                manager: manager.clone(),
                peers: Vec::new(),
                reports: Vec::new(),
            });
        }
        let member_ids: Vec<String> = people[first..].iter().map(|p| p.id.clone()).collect();
        if let Some(m) = people.iter_mut().find(|p| p.id == manager) {
            m.reports = member_ids.clone();
        }
        for p in &mut people[first..] {
            p.peers = member_ids
                .iter()
                .filter(|id| **id != p.id)
                .cloned()
                .collect();
        }
    }
    // Managers are one another's peers.
    let managers: Vec<String> = people
        .iter()
        .filter(|p| p.profile == Profile::Manager)
        .map(|p| p.id.clone())
        .collect();
    for p in people.iter_mut().filter(|p| p.profile == Profile::Manager) {
        p.peers = managers.iter().filter(|id| **id != p.id).cloned().collect();
    }
    for p in &mut people {
        let specialism = if p.profile == Profile::Specialist {
            specialism(p.role)
        } else {
            &[]
        };
        p.levels = rated_competencies(p.role, p.profile)
            .into_iter()
            .chain(["people_management"])
            .map(|c| {
                let strong = p.profile.strengths().iter().find(|(s, _)| *s == c);
                let level = match strong {
                    Some((_, level)) => *level,
                    None if specialism.contains(&c) => 4.3,
                    None => p.profile.base(),
                };
                (c, level + 0.2 * random.normal())
            })
            .collect();
    }

    // Every rater's leniency: most near zero, a few clearly lenient or severe.
    let mut leniency: Vec<(String, f64)> = people
        .iter()
        .map(|p| {
            (
                p.id.clone(),
                (0.25 * random.normal() * 100.0).round() / 100.0,
            )
        })
        .collect();
    leniency.extend([
        ("dir-eng".to_string(), 0.1),
        ("dir-product".to_string(), 0.5),
        ("calibration-committee".to_string(), 0.0),
    ]);
    // Two lenient and two severe managers.
    for (i, bias) in [(0, 0.7), (2, -0.7), (4, 0.6), (6, -0.6)] {
        let id = &managers[i];
        if let Some(entry) = leniency.iter_mut().find(|(r, _)| r == id) {
            entry.1 = bias;
        }
    }
    let leniency_of = |rater: &str| {
        leniency
            .iter()
            .find(|(r, _)| r == rater)
            .map_or(0.0, |(_, l)| *l)
    };

    let mut evidence = String::from(
        "subject_id,competency_id,level,source,rater_id,observed_at,confidence,summary,link,source_system,external_id\n",
    );
    for p in &people {
        let rated = rated_competencies(p.role, p.profile);
        let mut ratings: Vec<Rating> = Vec::new();
        for (cycle, &opens) in CYCLES.iter().enumerate() {
            // A new hire has been through the last cycle only, and only partly.
            let newcomer = p.profile == Profile::NewHire;
            if newcomer && cycle + 1 < CYCLES.len() {
                continue;
            }
            let rated_now = if newcomer { &rated[..2] } else { &rated[..] };
            let mut rating = |competency, source, rater, days_before, confidence, summary| {
                ratings.push(Rating {
                    competency,
                    source,
                    rater,
                    days_before,
                    minutes: 8 * 60 + random.below(9 * 60) as i64,
                    confidence,
                    summary,
                })
            };
            for c in rated_now.iter().take(7) {
                rating(c, "manager", &p.manager, opens - 3, "1", "");
            }
            for c in rated_now.iter().take(4) {
                rating(c, "self", &p.id, opens, "0.8", "");
            }
            if newcomer {
                continue;
            }
            for peer in [
                &p.peers[cycle % p.peers.len()],
                &p.peers[(cycle + 1) % p.peers.len()],
            ] {
                for c in rated.iter().skip(cycle % 2).step_by(2).take(3) {
                    rating(c, "peer", peer, opens - 7, "0.9", "");
                }
            }
            for report in p.reports.iter().skip(cycle % 2).take(2) {
                for c in ["people_management", "mentoring", "communication"] {
                    rating(c, "direct_report", report, opens - 10, "0.7", "");
                }
            }
            // Artifacts fall anywhere in the half year before the cycle.
            for k in 0..2 {
                let i = (cycle * 2 + k + p.id.len()) % ARTIFACT_COMPETENCIES.len();
                let c = match ARTIFACT_COMPETENCIES[i] {
                    "advocacy" if p.role != "developer_advocate" => "communication",
                    c => c,
                };
                rating(
                    c,
                    "artifact",
                    "",
                    opens + 30 + 60 * k as i64,
                    "",
                    ARTIFACT_SUMMARIES[i],
                );
            }
            if CALIBRATION_CYCLES.contains(&cycle) {
                for c in rated.iter().take(3) {
                    rating(
                        c,
                        "calibration",
                        "calibration-committee",
                        opens - 25,
                        "1",
                        "",
                    );
                }
            }
        }
        for (n, r) in ratings.iter().enumerate() {
            let bias = if r.source == "self" {
                SELF_BIAS
            } else {
                leniency_of(r.rater)
            };
            let observed =
                p.level(r.competency, r.days_before) + bias + RATING_NOISE * random.normal();
            writeln!(
                evidence,
                "{},{},{},{},{},{},{},{},,demo-hris,{}-{:03}",
                p.id,
                r.competency,
                observed.round().clamp(1.0, 5.0),
                r.source,
                r.rater,
                timestamp(anchor, r.days_before, r.minutes),
                r.confidence,
                r.summary,
                p.id,
                n + 1,
            )
            .expect("writing to a String");
        }
    }

    let mut subjects = String::from("subject_id,current_role_id,org_unit,manager_id,profile\n");
    for p in &people {
        writeln!(
            subjects,
            "{},{},{},{},{}",
            p.id,
            p.role,
            p.org_unit,
            p.manager,
            p.profile.name()
        )
        .expect("writing to a String");
    }
    let mut raters = String::from("rater_id,leniency\n");
    for (rater, bias) in &leniency {
        writeln!(raters, "{rater},{bias:.2}").expect("writing to a String");
    }
    // Every third person by position, so each group mixes teams and profiles.
    let mut labels = String::from("subject_id,group\n");
    for (i, p) in people.iter().enumerate() {
        let group = ["group_a", "group_b", "group_c"][i % 3];
        writeln!(labels, "{},{group}", p.id).expect("writing to a String");
    }
    Demo {
        evidence_csv: evidence,
        subjects_csv: subjects,
        raters_csv: raters,
        labels_csv: labels,
    }
}
