//! One-dimensional PostgreSQL arrays decoded straight from their binary
//! form, for the scoring statement's evidence arrays (350 elements per
//! subject of 50 items). sqlx decodes an array element by element through
//! its generic value machinery, which cost about a fifth of the server's
//! instructions per assessment (callgrind, docs/benchmarks.md); reading the
//! wire format (`array_send`: a header, then each element as its length and
//! its bytes) directly costs a fraction of that. A value in text form (which
//! sqlx never asks for in a prepared statement's results) goes to sqlx's own
//! decoding, except for [`PgStrs`], whose elements are borrowed from the
//! binary value and which refuses text.

use chrono::{DateTime, Utc};
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgHasArrayType, PgTypeInfo, PgValueFormat, PgValueRef};
use sqlx::{Decode, Postgres, Type};
use uuid::Uuid;

/// A one-dimensional array without NULL elements, as a `Vec`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PgArray<T>(pub Vec<T>);

/// An array element whose binary form this module reads.
pub trait Element: Sized + PgHasArrayType {
    fn from_binary(bytes: &[u8]) -> Result<Self, BoxDynError>;
}

impl Element for Uuid {
    fn from_binary(bytes: &[u8]) -> Result<Self, BoxDynError> {
        Ok(Uuid::from_slice(bytes)?)
    }
}

impl Element for f64 {
    fn from_binary(bytes: &[u8]) -> Result<Self, BoxDynError> {
        Ok(f64::from_be_bytes(bytes.try_into()?))
    }
}

impl Element for String {
    fn from_binary(bytes: &[u8]) -> Result<Self, BoxDynError> {
        Ok(std::str::from_utf8(bytes)?.to_owned())
    }
}

/// Microseconds since 2000-01-01 00:00:00 UTC, PostgreSQL's epoch.
impl Element for DateTime<Utc> {
    fn from_binary(bytes: &[u8]) -> Result<Self, BoxDynError> {
        let micros = i64::from_be_bytes(bytes.try_into()?);
        // From the Unix epoch in one step: adding a duration to a date-time
        // normalises the date twice and cost 200 instructions an element.
        micros
            .checked_add(POSTGRES_EPOCH_MICROS)
            .and_then(DateTime::from_timestamp_micros)
            .ok_or_else(|| format!("timestamptz {micros} µs from 2000 is out of range").into())
    }
}

/// 2000-01-01 00:00:00 UTC in microseconds since the Unix epoch.
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;

impl<T: Element> Type<Postgres> for PgArray<T> {
    fn type_info() -> PgTypeInfo {
        T::array_type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        T::array_compatible(ty)
    }
}

impl<'r, T> Decode<'r, Postgres> for PgArray<T>
where
    T: Element + for<'a> Decode<'a, Postgres> + Type<Postgres>,
{
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        match value.format() {
            PgValueFormat::Binary => Ok(Self(elements(value.as_bytes()?)?)),
            PgValueFormat::Text => Ok(Self(<Vec<T> as Decode<Postgres>>::decode(value)?)),
        }
    }
}

/// A one-dimensional text array without NULL elements, its elements
/// borrowed from the row: for arrays that are only parsed or looked up,
/// without a `String` allocated per element. Read in binary form only (a
/// prepared statement's results always are).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PgStrs<'r>(pub Vec<&'r str>);

impl Type<Postgres> for PgStrs<'_> {
    fn type_info() -> PgTypeInfo {
        String::array_type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        String::array_compatible(ty)
    }
}

impl<'r> Decode<'r, Postgres> for PgStrs<'r> {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        match value.format() {
            PgValueFormat::Binary => Ok(Self(elements_with(value.as_bytes()?, borrowed_str)?)),
            PgValueFormat::Text => Err("a text array in text form, not binary".into()),
        }
    }
}

/// A text element as it lies in the array's bytes.
fn borrowed_str(bytes: &[u8]) -> Result<&str, BoxDynError> {
    Ok(std::str::from_utf8(bytes)?)
}

/// The elements of a binary array, each read by [`Element::from_binary`].
fn elements<T: Element>(bytes: &[u8]) -> Result<Vec<T>, BoxDynError> {
    elements_with(bytes, T::from_binary)
}

/// The elements of a binary array, each read by `element`: `ndim`, a NULL
/// flag, the element type, one (length, lower bound) pair per dimension,
/// then every element as a 4-byte length and its bytes (length -1: NULL).
fn elements_with<'a, T>(
    bytes: &'a [u8],
    element: impl Fn(&'a [u8]) -> Result<T, BoxDynError>,
) -> Result<Vec<T>, BoxDynError> {
    let mut input = Input(bytes);
    let dimensions = input.i32()?;
    let _has_nulls = input.i32()?;
    let _element_type = input.i32()?;
    let len = match dimensions {
        0 => 0,
        1 => {
            let len = input.i32()?;
            let _lower_bound = input.i32()?;
            usize::try_from(len).map_err(|_| format!("an array of length {len}"))?
        }
        n => {
            return Err(format!("a {n}-dimensional array where one dimension was expected").into());
        }
    };
    let mut out = Vec::with_capacity(len.min(bytes.len() / 4));
    for _ in 0..len {
        let size = input.i32()?;
        let size = usize::try_from(size).map_err(|_| "a NULL array element")?;
        out.push(element(input.take(size)?)?);
    }
    if !input.0.is_empty() {
        return Err(format!("{} bytes after the array's last element", input.0.len()).into());
    }
    Ok(out)
}

struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], BoxDynError> {
        if self.0.len() < n {
            return Err("a binary array ends early".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    #[inline]
    fn i32(&mut self) -> Result<i32, BoxDynError> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `array_send`'s form of a one-dimensional array of `elements`.
    fn binary(element_type: i32, elements: &[Option<&[u8]>]) -> Vec<u8> {
        let mut out = Vec::new();
        let has_nulls = elements.iter().any(Option::is_none);
        for word in [
            1,
            i32::from(has_nulls),
            element_type,
            elements.len() as i32,
            1,
        ] {
            out.extend_from_slice(&word.to_be_bytes());
        }
        for element in elements {
            match element {
                Some(bytes) => {
                    out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
                    out.extend_from_slice(bytes);
                }
                None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        out
    }

    #[test]
    fn reads_each_element_type() {
        let id = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);
        assert_eq!(
            elements::<Uuid>(&binary(2950, &[Some(id.as_bytes())])).unwrap(),
            vec![id]
        );
        let levels = [2.5f64.to_be_bytes(), (-0.0f64).to_be_bytes()];
        let read = elements::<f64>(&binary(701, &[Some(&levels[0]), Some(&levels[1])])).unwrap();
        assert_eq!(read[0], 2.5);
        assert!(read[1] == 0.0 && read[1].is_sign_negative());
        assert_eq!(
            elements::<String>(&binary(25, &[Some(b"peer"), Some(b"")])).unwrap(),
            vec!["peer".to_string(), String::new()]
        );
        // 2026-12-01T10:00:00.000001Z is 849,434,400 s and 1 µs after 2000.
        let micros = 849_434_400_000_001i64.to_be_bytes();
        let when = elements::<DateTime<Utc>>(&binary(1184, &[Some(&micros)])).unwrap();
        assert_eq!(when[0].to_rfc3339(), "2026-12-01T10:00:00.000001+00:00");
        let before = (-1i64).to_be_bytes();
        let when = elements::<DateTime<Utc>>(&binary(1184, &[Some(&before)])).unwrap();
        assert_eq!(when[0].to_rfc3339(), "1999-12-31T23:59:59.999999+00:00");
    }

    #[test]
    fn borrowed_strings_are_the_array_bytes() {
        let bytes = binary(
            25,
            &[Some(b"peer"), Some(b""), Some("r\u{e9}viewer".as_bytes())],
        );
        let read = elements_with(&bytes, borrowed_str).unwrap();
        assert_eq!(read, vec!["peer", "", "r\u{e9}viewer"]);
        assert!(std::ptr::eq(read[0].as_ptr(), bytes[24..].as_ptr()));
        assert!(elements_with(&binary(25, &[Some(&[0xff])]), borrowed_str).is_err());
    }

    #[test]
    fn an_empty_array_has_no_dimensions() {
        let empty = [0i32, 0, 25]
            .iter()
            .flat_map(|w| w.to_be_bytes())
            .collect::<Vec<u8>>();
        assert!(elements::<String>(&empty).unwrap().is_empty());
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        assert!(elements::<String>(&binary(25, &[Some(b"a"), None])).is_err());
        assert!(elements::<String>(&binary(25, &[Some(&[0xff, 0xfe])])).is_err());
        assert!(elements::<f64>(&binary(701, &[Some(&[0; 4])])).is_err());
        for micros in [i64::MAX, i64::MIN] {
            let out_of_range = binary(1184, &[Some(&micros.to_be_bytes())]);
            assert!(elements::<DateTime<Utc>>(&out_of_range).is_err());
        }
        let whole = binary(25, &[Some(b"abc")]);
        assert!(elements::<String>(&whole[..whole.len() - 1]).is_err());
        let mut longer = whole.clone();
        longer.push(0);
        assert!(elements::<String>(&longer).is_err());
        let mut two_dimensional = whole;
        two_dimensional[3] = 2;
        assert!(elements::<String>(&two_dimensional).is_err());
    }
}
