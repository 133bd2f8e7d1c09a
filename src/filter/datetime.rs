//! Datetime payload values and range bounds, as Qdrant reads them: RFC 3339 and its
//! relaxations (a space for the `T`, no seconds, no time, no offset meaning UTC, `+01` or
//! `+0100` offsets, `Z`, `z` or ` UTC`), kept as microseconds since the Unix epoch.
//!
//! The accepted forms are those of qdrant-client's local mode (`local/datetime_utils.py`),
//! which mirrors the server; `tests/crosscheck/datetime.py` generates the cases that keep the
//! two in step.

use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat};
use serde::{Serialize, Serializer};

/// An instant, in microseconds since 1970-01-01T00:00:00Z (finer parts are cut off, as
/// local mode cuts them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Datetime(pub i64);

/// Forms with seconds, the only ones an offset may follow. `%.f` takes an optional fraction.
const WITH_SECONDS: [&str; 2] = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"];
/// Forms without seconds, read only when no offset is given.
const WITHOUT_SECONDS: [&str; 2] = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"];

impl Datetime {
    /// Reads a payload string or a range bound; `None` if it is no datetime Qdrant accepts.
    pub fn parse(text: &str) -> Option<Datetime> {
        let text = text.trim_start();
        // The year has four digits (chrono would take fewer).
        let year = text.as_bytes().get(..5);
        if !year.is_some_and(|y| y[..4].iter().all(u8::is_ascii_digit) && y[4] == b'-') {
            return None;
        }
        let (body, offset) = split_offset(text)?;
        let body = cut_fraction(body);
        let naive = match offset {
            Some(_) => parse_with(&body, &WITH_SECONDS)?,
            None => parse_with(&body, &WITH_SECONDS)
                .or_else(|| parse_with(&body, &WITHOUT_SECONDS))
                .or_else(|| {
                    let date = NaiveDate::parse_from_str(&body, "%Y-%m-%d").ok()?;
                    date.and_hms_opt(0, 0, 0)
                })?,
        };
        let micros = naive.and_utc().timestamp_micros();
        Some(Datetime(micros - offset.unwrap_or(0) as i64 * 1_000_000))
    }
}

/// Splits off a trailing offset, returned in seconds east of UTC; `None` when the offset is
/// malformed. A space may separate it from the time (the server reads its own output so).
fn split_offset(text: &str) -> Option<(&str, Option<i32>)> {
    if let Some(body) = text.strip_suffix(" UTC") {
        return Some((body, Some(0)));
    }
    if let Some(body) = text.strip_suffix(['Z', 'z']) {
        return Some((body, Some(0)));
    }
    // The date's own dashes end at byte 10; a sign after that starts an offset.
    let Some(sign_at) = text
        .get(10..)
        .and_then(|time| time.rfind(['+', '-']))
        .map(|i| i + 10)
    else {
        return Some((text, None));
    };
    let seconds = parse_offset(&text[sign_at + 1..])?;
    let seconds = if text.as_bytes()[sign_at] == b'-' {
        -seconds
    } else {
        seconds
    };
    let body = text[..sign_at]
        .strip_suffix(' ')
        .unwrap_or(&text[..sign_at]);
    Some((body, Some(seconds)))
}

/// `HH`, `HHMM`, `HH:MM`, `HHMMSS` or `HH:MM:SS`, under 24 hours, in seconds.
fn parse_offset(text: &str) -> Option<i32> {
    let digits: String = text.chars().filter(|c| *c != ':').collect();
    let colons = text.len() - digits.len();
    let well_formed = digits.bytes().all(|b| b.is_ascii_digit())
        && match digits.len() {
            2 => colons == 0,
            4 => colons == 0 || text.as_bytes().get(2) == Some(&b':') && colons == 1,
            6 => {
                colons == 0
                    || colons == 2 && text.as_bytes()[2] == b':' && text.as_bytes()[5] == b':'
            }
            _ => false,
        };
    if !well_formed {
        return None;
    }
    let part = |i: usize| {
        digits
            .get(i..i + 2)
            .map_or(Some(0), |p| p.parse::<i32>().ok())
    };
    let (h, m, s) = (part(0)?, part(2)?, part(4)?);
    (h < 24 && m < 60 && s < 60).then_some(h * 3600 + m * 60 + s)
}

/// Keeps at most six digits of a fraction of a second: finer parts are cut off, not rejected.
fn cut_fraction(body: &str) -> std::borrow::Cow<'_, str> {
    let Some(dot) = body.find('.') else {
        return body.into();
    };
    let digits = body[dot + 1..]
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count();
    if digits <= 6 {
        return body.into();
    }
    format!("{}{}", &body[..dot + 7], &body[dot + 1 + digits..]).into()
}

fn parse_with(body: &str, formats: &[&str]) -> Option<NaiveDateTime> {
    // `%.f` would also take a bare dot, which the server rejects.
    if body.ends_with('.') {
        return None;
    }
    formats
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(body, f).ok())
}

impl fmt::Display for Datetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match DateTime::from_timestamp_micros(self.0) {
            Some(t) => f.write_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            None => write!(f, "{}µs", self.0),
        }
    }
}

impl Serialize for Datetime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::super::crosscheck_datetime::{CASES, POINTS};
    use super::super::tests_eval::check_table;
    use super::*;

    #[test]
    fn datetime_ranges_match_local_mode() {
        check_table(POINTS, CASES);
    }

    fn at(text: &str) -> Option<String> {
        Datetime::parse(text).map(|d| d.to_string())
    }

    #[test]
    fn reads_the_relaxed_forms() {
        assert_eq!(at("2024-01-05").as_deref(), Some("2024-01-05T00:00:00Z"));
        assert_eq!(at("2024-1-5").as_deref(), Some("2024-01-05T00:00:00Z"));
        assert_eq!(
            at(" 2024-01-05 10:30").as_deref(),
            Some("2024-01-05T10:30:00Z")
        );
        assert_eq!(
            at("2024-01-01T00:00:00+0100").as_deref(),
            Some("2023-12-31T23:00:00Z")
        );
        assert_eq!(
            at("2024-01-01T00:00:00 -05").as_deref(),
            Some("2024-01-01T05:00:00Z")
        );
        assert_eq!(
            at("2024-01-01T00:00:00.123456789z").as_deref(),
            Some("2024-01-01T00:00:00.123456Z")
        );
        assert_eq!(
            at("2024-01-01 00:00:00.5 UTC").as_deref(),
            Some("2024-01-01T00:00:00.500Z")
        );
    }

    #[test]
    fn rejects_what_the_server_rejects() {
        for text in [
            "2024-01-01T00:00:00.",
            "2024-01-01T10:00+01:00",
            "2024-01-01 UTC",
            "24-01-01",
            "2024-13-01",
            "2024-01-01T00:00:00+24:00",
            "2024-01-01T00:00:00Z ",
            "yesterday",
            "",
        ] {
            assert_eq!(at(text), None, "{text:?}");
        }
    }
}
