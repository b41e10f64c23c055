//! proto <-> domain conversions, and the request plumbing every service
//! shares: field masks, pagination tokens, required fields.

pub mod framework;
pub mod request;
