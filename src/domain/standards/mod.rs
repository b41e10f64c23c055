//! Open learning-technology standards: frameworks as CASE 1.1 packages and
//! learning records as xAPI statements (SPEC §9, docs/standards.md). Pure
//! translation between their JSON and Ladder's domain types; the API and the
//! CLI apply the results.

pub mod case;
pub mod xapi;
