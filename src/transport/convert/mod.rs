//! proto <-> domain conversions, and the request plumbing every service
//! shares: field masks, pagination tokens, required fields. Incoming messages
//! are validated here, field by field, so that a bad request names its field
//! and reaches no storage code.

pub mod assessment;
pub mod calibration;
pub mod etag;
pub mod framework;
pub mod oversight;
pub mod page;
pub mod recommendation;
pub mod request;
pub mod request_id;
pub mod standards;
pub mod subject;
pub mod time;

use uuid::Uuid;

/// A UUID as the API writes it (hyphenated, lower case), encoded straight
/// into the string: formatting through `Display` cost three times as much,
/// and an answer carries one per evidence item it cites.
pub fn uuid_text(id: Uuid) -> String {
    String::from(&*id.hyphenated().encode_lower(&mut Uuid::encode_buffer()))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn uuid_text_is_the_display_form(id in proptest::prelude::any::<u128>()) {
            let id = Uuid::from_u128(id);
            proptest::prop_assert_eq!(uuid_text(id), id.to_string());
        }
    }
}
