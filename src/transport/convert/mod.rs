//! proto <-> domain conversions. Incoming messages are validated here, field by
//! field, so that a bad request names its field and reaches no storage code.

pub mod assessment;
pub mod recommendation;
pub mod time;
