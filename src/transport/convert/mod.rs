//! proto <-> domain conversions, and the request plumbing every service
//! shares: field masks, pagination tokens, required fields. Incoming messages
//! are validated here, field by field, so that a bad request names its field
//! and reaches no storage code.

pub mod assessment;
pub mod calibration;
pub mod etag;
pub mod framework;
pub mod oversight;
pub mod recommendation;
pub mod request;
pub mod standards;
pub mod time;
