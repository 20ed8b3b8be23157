//! Record lifetimes: parsing of the `slidingtime` and `finaltime` request
//! values, capping at the configured maximum, and the resulting expiration.
//!
//! Relative periods are a positive integer followed by a case-sensitive unit,
//! optionally separated by whitespace (`"30d"`, `"90 min"`):
//!
//! | unit  | meaning | seconds    |
//! |-------|---------|------------|
//! | `s`   | second  | 1          |
//! | `min` | minute  | 60         |
//! | `h`   | hour    | 3 600      |
//! | `d`   | day     | 86 400     |
//! | `w`   | week    | 604 800    |
//! | `m`   | month   | 2 592 000 (30 days) |
//! | `y`   | year    | 31 536 000 (365 days) |
//!
//! `m` is a MONTH, as in Databunker and its configuration defaults such as
//! `"3m"`; minutes are written `min`.
//!
//! Other accepted forms:
//! - a bare integer (string or JSON number): an absolute unix timestamp when
//!   it is greater than `now`, otherwise a relative number of seconds;
//! - an ISO date `2026-01-01` (midnight UTC) or an RFC 3339 date-time
//!   `2026-01-01T10:00:00Z` / `2026-01-01T10:00:00+02:00`: absolute.
//!
//! Surrounding whitespace is ignored; an empty string or JSON `null` means the
//! value is absent. Errors name only the field, never the value, because the
//! value could be personal data.

use chrono::{DateTime, NaiveDate};
use serde_json::Value;

/// A parsed time value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSpec {
    /// A period in seconds, always greater than zero.
    Relative(i64),
    /// A point in time in unix seconds.
    Absolute(i64),
}

/// Why a time value was refused; carries only the field name.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExpiryError {
    /// The value is not in any accepted form.
    #[error("The {0} parameter has an incorrect format")]
    Format(&'static str),
    /// The value is an absolute time that has already passed.
    #[error("The {0} parameter is in the past")]
    Past(&'static str),
}

/// Field name used in errors from [`parse_max`], which reads configuration.
const MAX_FIELD: &str = "max_expiration";

/// Units of relative periods and their length in seconds.
const UNITS: [(&str, i64); 7] =
    [("s", 1), ("min", 60), ("h", 3_600), ("d", 86_400), ("w", 7 * 86_400), ("m", 30 * 86_400), ("y", 365 * 86_400)];

/// Parses a value; `field` is the request parameter name used in the error message ("slidingtime", "finaltime").
pub fn parse(field: &'static str, value: &Value, now: i64) -> Result<Option<TimeSpec>, ExpiryError> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) => {
            let text = text.trim();
            if text.is_empty() {
                return Ok(None);
            }
            parse_text(field, text, now).map(Some)
        }
        // Floats and integers beyond i64 are refused rather than rounded.
        Value::Number(number) => {
            let n = number.as_i64().ok_or(ExpiryError::Format(field))?;
            bare_integer(field, n, now).map(Some)
        }
        Value::Bool(_) | Value::Array(_) | Value::Object(_) => Err(ExpiryError::Format(field)),
    }
}

/// Parses a configuration maximum such as "10y" into seconds (relative forms only; used at start-up).
pub fn parse_max(text: &str) -> Result<i64, ExpiryError> {
    let text = text.trim();
    // A bare integer is a number of seconds here: there is no `now` to compare with.
    let secs = if is_digits(text) {
        text.parse::<i64>().map_err(|_| ExpiryError::Format(MAX_FIELD))?
    } else {
        period(text).ok_or(ExpiryError::Format(MAX_FIELD))?
    };
    if secs > 0 { Ok(secs) } else { Err(ExpiryError::Format(MAX_FIELD)) }
}

/// Lifetime of a record: a sliding period (extended on access) and/or a fixed end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Expiry {
    /// Sliding period in seconds, restarted on each access.
    pub sliding: Option<i64>,
    /// Fixed end in unix seconds.
    pub final_at: Option<i64>,
}

impl Expiry {
    /// Builds from the optional request values, capping each at `max_secs` from `now` (capped, never rejected).
    ///
    /// slidingtime must be relative: a bare integer is seconds whatever its size; a date is
    /// `ExpiryError::Format("slidingtime")`.
    /// finaltime relative => now + secs; absolute in the past (<= now) => `ExpiryError::Past("finaltime")`.
    /// Capping: sliding = min(sliding, max_secs); final_at = min(final_at, now + max_secs).
    pub fn from_request(
        sliding: Option<&Value>,
        finaltime: Option<&Value>,
        now: i64,
        max_secs: i64,
    ) -> Result<Expiry, ExpiryError> {
        const SLIDING: &str = "slidingtime";
        const FINAL: &str = "finaltime";

        // A sliding window is a period, so a bare integer is always seconds here, never a timestamp.
        let sliding = match sliding.map(|v| parse(SLIDING, v, i64::MAX)).transpose()?.flatten() {
            None => None,
            Some(TimeSpec::Relative(secs)) => Some(secs.min(max_secs)),
            // A sliding window is a period; a point in time has no meaning here.
            Some(TimeSpec::Absolute(_)) => return Err(ExpiryError::Format(SLIDING)),
        };

        let final_at = match finaltime.map(|v| parse(FINAL, v, now)).transpose()?.flatten() {
            None => None,
            // Capping the period first keeps the addition in range for any sane maximum.
            Some(TimeSpec::Relative(secs)) => {
                Some(now.checked_add(secs.min(max_secs)).ok_or(ExpiryError::Format(FINAL))?)
            }
            Some(TimeSpec::Absolute(at)) if at <= now => return Err(ExpiryError::Past(FINAL)),
            Some(TimeSpec::Absolute(at)) => Some(at.min(now.saturating_add(max_secs))),
        };

        Ok(Expiry { sliding, final_at })
    }

    /// Unix time at which the record expires if not accessed again: min(final_at, now + sliding), None when neither is set.
    pub fn expires_at(&self, now: i64) -> Option<i64> {
        let slide_end = self.sliding.map(|secs| now.saturating_add(secs));
        match (slide_end, self.final_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// True when no lifetime is set.
    pub fn is_unbounded(&self) -> bool {
        self.sliding.is_none() && self.final_at.is_none()
    }

    /// The lifetime columns of a record written at `now`.
    pub fn lifetime(&self, now: i64) -> Lifetime {
        Lifetime { sliding_secs: self.sliding, final_at: self.final_at, expires_at: self.expires_at(now) }
    }
}

/// Lifetime columns of a stored record (users, app data, sessions).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lifetime {
    /// Sliding period in seconds.
    pub sliding_secs: Option<i64>,
    /// Fixed end (unix seconds).
    pub final_at: Option<i64>,
    /// When the record expires unless accessed (unix seconds).
    pub expires_at: Option<i64>,
}

impl Lifetime {
    /// The lifetime rules these columns were computed from.
    pub fn expiry(&self) -> Expiry {
        Expiry { sliding: self.sliding_secs, final_at: self.final_at }
    }

    /// The new `expires_at` that an access at `now` earns a sliding record, when it is worth a
    /// write; `None` for records without a sliding period and for small moves.
    ///
    /// An access moves the expiry to min(now + sliding, final_at). Writing that on every read
    /// would turn each read into a write, so the move is taken only when it exceeds a step of
    /// max(60 s, 1% of the period), itself at most 10% of the period: a record then always
    /// lives at least 90% of its sliding period after its last access (99% for periods over
    /// 100 minutes). Reaching the fixed end is always taken, which happens at most once.
    pub fn extension(&self, now: i64) -> Option<i64> {
        let sliding = self.sliding_secs?;
        let current = self.expires_at?;
        let target = self.expiry().expires_at(now)?;
        let step = (sliding / 100).max(60).min(sliding / 10);
        let worth_it = target.saturating_sub(current) > step || Some(target) == self.final_at;
        (target > current && worth_it).then_some(target)
    }
}

/// Parses a trimmed, non-empty string in any accepted form.
fn parse_text(field: &'static str, text: &str, now: i64) -> Result<TimeSpec, ExpiryError> {
    if is_digits(text) {
        let n = text.parse::<i64>().map_err(|_| ExpiryError::Format(field))?;
        return bare_integer(field, n, now);
    }
    if let Some(secs) = period(text) {
        return Ok(TimeSpec::Relative(secs));
    }
    if let Some(at) = iso_date(text) {
        return Ok(TimeSpec::Absolute(at));
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(TimeSpec::Absolute(at.timestamp()));
    }
    Err(ExpiryError::Format(field))
}

/// Applies the bare-integer rule: after `now` is a timestamp, otherwise seconds.
fn bare_integer(field: &'static str, n: i64, now: i64) -> Result<TimeSpec, ExpiryError> {
    if n > now {
        Ok(TimeSpec::Absolute(n))
    } else if n > 0 {
        Ok(TimeSpec::Relative(n))
    } else {
        Err(ExpiryError::Format(field))
    }
}

/// True for a non-empty run of ASCII digits (so no sign, which `i64::from_str` would allow).
fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// Parses "<positive integer><optional whitespace><unit>" into seconds.
fn period(text: &str) -> Option<i64> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() {
        return None;
    }
    let count = digits.parse::<i64>().ok().filter(|&n| n > 0)?;
    let unit = unit.trim_start();
    let (_, scale) = UNITS.iter().find(|(name, _)| *name == unit)?;
    count.checked_mul(*scale)
}

/// Parses a strict `YYYY-MM-DD` date as midnight UTC.
fn iso_date(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    // chrono's %Y also takes signs and longer years; keep to the plain ISO shape.
    let shaped = bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        });
    if !shaped {
        return None;
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp())
}

#[cfg(test)]
mod sliding_tests {
    use super::*;
    use serde_json::json;

    fn sliding(secs: i64, final_at: Option<i64>, expires_at: i64) -> Lifetime {
        Lifetime { sliding_secs: Some(secs), final_at, expires_at: Some(expires_at) }
    }

    #[test]
    fn extension_moves_forward_only_by_a_meaningful_step() {
        let day = 86_400;
        let month = sliding(30 * day, None, 30 * day);
        // The step of a 30-day period is 1% of it (7.2 hours): reads within it write nothing.
        assert_eq!(month.extension(7 * 3_600), None);
        assert_eq!(month.extension(7 * 3_600 + 1_201), Some(30 * day + 7 * 3_600 + 1_201));
        // Short periods: at least 60 s, but never more than 10% of the period.
        let hour = sliding(3_600, None, 3_600);
        assert_eq!(hour.extension(60), None);
        assert_eq!(hour.extension(61), Some(3_661));
        let minute = sliding(60, None, 60);
        assert_eq!(minute.extension(6), None);
        assert_eq!(minute.extension(7), Some(67));
        // Never backwards, e.g. a stale row read after another replica extended it.
        assert_eq!(hour.extension(-100), None);
    }

    #[test]
    fn extension_stops_at_the_fixed_end() {
        let capped = sliding(3_600, Some(4_000), 3_600);
        assert_eq!(capped.extension(30), None);
        assert_eq!(capped.extension(200), Some(3_800));
        assert_eq!(capped.extension(500), Some(4_000));
        // Reaching the fixed end is written even when the move is small...
        assert_eq!(sliding(3_600, Some(4_000), 3_990).extension(500), Some(4_000));
        // ...once: from there on nothing moves.
        assert_eq!(sliding(3_600, Some(4_000), 4_000).extension(3_000), None);
    }

    #[test]
    fn records_without_a_sliding_period_never_extend() {
        let fixed = Lifetime { sliding_secs: None, final_at: Some(100), expires_at: Some(100) };
        assert_eq!(fixed.extension(50), None);
        assert_eq!(Lifetime::default().extension(50), None);
        let expiry = Expiry { sliding: Some(10), final_at: Some(50) };
        assert_eq!(expiry.lifetime(45), Lifetime { sliding_secs: Some(10), final_at: Some(50), expires_at: Some(50) });
    }

    #[test]
    fn bare_integer_slidingtime_is_seconds_even_when_large() {
        let now = 1_800_000_000;
        let expiry = Expiry::from_request(Some(&json!(1_900_000_000)), None, now, i64::MAX).expect("seconds");
        assert_eq!(expiry.sliding, Some(1_900_000_000));
        let expiry = Expiry::from_request(Some(&json!("120")), None, now, 60).expect("capped");
        assert_eq!(expiry.sliding, Some(60));
        assert_eq!(
            Expiry::from_request(Some(&json!("2030-01-01")), None, now, i64::MAX),
            Err(ExpiryError::Format("slidingtime"))
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// 2025-01-01T00:00:00Z, a fixed "now" so every expectation is exact.
    const NOW: i64 = 1_735_689_600;
    const DAY: i64 = 86_400;

    fn p(value: Value) -> Result<Option<TimeSpec>, ExpiryError> {
        parse("finaltime", &value, NOW)
    }

    fn rel(secs: i64) -> Result<Option<TimeSpec>, ExpiryError> {
        Ok(Some(TimeSpec::Relative(secs)))
    }

    fn abs(at: i64) -> Result<Option<TimeSpec>, ExpiryError> {
        Ok(Some(TimeSpec::Absolute(at)))
    }

    #[test]
    fn every_unit() {
        assert_eq!(p(json!("45s")), rel(45));
        assert_eq!(p(json!("90min")), rel(5_400));
        assert_eq!(p(json!("1h")), rel(3_600));
        assert_eq!(p(json!("24h")), rel(86_400));
        assert_eq!(p(json!("7d")), rel(7 * DAY));
        assert_eq!(p(json!("30d")), rel(30 * DAY));
        assert_eq!(p(json!("2w")), rel(14 * DAY));
        assert_eq!(p(json!("1m")), rel(30 * DAY));
        assert_eq!(p(json!("12m")), rel(360 * DAY));
        assert_eq!(p(json!("1y")), rel(365 * DAY));
    }

    #[test]
    fn m_is_month_not_minute() {
        assert_eq!(p(json!("3m")), rel(90 * DAY));
        assert_eq!(p(json!("3min")), rel(180));
    }

    #[test]
    fn units_are_case_sensitive() {
        assert_eq!(p(json!("1D")), Err(ExpiryError::Format("finaltime")));
        assert_eq!(p(json!("1M")), Err(ExpiryError::Format("finaltime")));
        assert_eq!(p(json!("1Min")), Err(ExpiryError::Format("finaltime")));
    }

    #[test]
    fn whitespace_is_trimmed_and_allowed_before_unit() {
        assert_eq!(p(json!("  30d  ")), rel(30 * DAY));
        assert_eq!(p(json!("30 d")), rel(30 * DAY));
        assert_eq!(p(json!("\t90\tmin\n")), rel(5_400));
        assert_eq!(p(json!(" 3600 ")), rel(3_600));
        assert_eq!(p(json!(" 2026-01-01 ")), abs(1_767_225_600));
    }

    #[test]
    fn bare_string_number_on_both_sides_of_now() {
        assert_eq!(p(json!("3600")), rel(3_600));
        assert_eq!(p(json!(NOW.to_string())), rel(NOW));
        assert_eq!(p(json!((NOW + 1).to_string())), abs(NOW + 1));
        assert_eq!(p(json!("1767225600")), abs(1_767_225_600));
    }

    #[test]
    fn bare_json_number_on_both_sides_of_now() {
        assert_eq!(p(json!(3600)), rel(3_600));
        assert_eq!(p(json!(NOW)), rel(NOW));
        assert_eq!(p(json!(NOW + 1)), abs(NOW + 1));
    }

    #[test]
    fn iso_date_is_midnight_utc() {
        assert_eq!(p(json!("2026-01-01")), abs(1_767_225_600));
        assert_eq!(p(json!("1970-01-02")), abs(DAY));
    }

    #[test]
    fn rfc3339_forms() {
        assert_eq!(p(json!("2026-01-01T10:00:00Z")), abs(1_767_225_600 + 36_000));
        assert_eq!(p(json!("2026-01-01T10:00:00+02:00")), abs(1_767_225_600 + 28_800));
        assert_eq!(p(json!("2026-01-01T10:00:00-01:30")), abs(1_767_225_600 + 41_400));
    }

    #[test]
    fn null_and_empty_are_absent() {
        assert_eq!(p(Value::Null), Ok(None));
        assert_eq!(p(json!("")), Ok(None));
        assert_eq!(p(json!("   ")), Ok(None));
    }

    #[test]
    fn rejects_malformed_values() {
        let bad = [
            json!(-5),
            json!("-5"),
            json!("-5d"),
            json!("+5d"),
            json!("0d"),
            json!("0"),
            json!(0),
            json!("5x"),
            json!("d"),
            json!("1.5d"),
            json!(1.5),
            json!(3600.0),
            json!(true),
            json!({}),
            json!([]),
            json!("2026-13-01"),
            json!("2026-1-1"),
            json!("+2026-01-01"),
            json!("tomorrow"),
            json!("5d5d"),
        ];
        for value in bad {
            assert_eq!(p(value.clone()), Err(ExpiryError::Format("finaltime")), "{value}");
        }
    }

    #[test]
    fn rejects_overflow_without_panicking() {
        let err = Err(ExpiryError::Format("slidingtime"));
        let parse_sliding = |v: Value| parse("slidingtime", &v, NOW);
        assert_eq!(parse_sliding(json!("99999999999999999999y")), err);
        assert_eq!(parse_sliding(json!("9223372036854775807y")), err);
        assert_eq!(parse_sliding(json!("99999999999999999999")), err);
        assert_eq!(parse_sliding(json!(u64::MAX)), err);
        // The largest period that fits is still accepted.
        assert_eq!(parse_sliding(json!("9223372036854775807s")), Ok(Some(TimeSpec::Relative(i64::MAX))));
    }

    #[test]
    fn error_messages_name_the_field_not_the_value() {
        let err = parse("slidingtime", &json!("secret@example.com"), NOW);
        assert_eq!(err, Err(ExpiryError::Format("slidingtime")));
        let text = err.map_err(|e| e.to_string());
        assert_eq!(text, Err("The slidingtime parameter has an incorrect format".to_owned()));
        assert_eq!(ExpiryError::Past("finaltime").to_string(), "The finaltime parameter is in the past");
    }

    #[test]
    fn parse_max_reads_relative_forms() {
        assert_eq!(parse_max("10y"), Ok(3_650 * DAY));
        assert_eq!(parse_max(" 3m "), Ok(90 * DAY));
        assert_eq!(parse_max("3600"), Ok(3_600));
        assert_eq!(parse_max("0d"), Err(ExpiryError::Format("max_expiration")));
        assert_eq!(parse_max("0"), Err(ExpiryError::Format("max_expiration")));
        assert_eq!(parse_max(""), Err(ExpiryError::Format("max_expiration")));
        assert_eq!(parse_max("2026-01-01"), Err(ExpiryError::Format("max_expiration")));
        assert_eq!(parse_max("99999999999999999999y"), Err(ExpiryError::Format("max_expiration")));
    }

    fn build(sliding: Option<Value>, finaltime: Option<Value>, max: i64) -> Result<Expiry, ExpiryError> {
        Expiry::from_request(sliding.as_ref(), finaltime.as_ref(), NOW, max)
    }

    #[test]
    fn from_request_without_values_is_unbounded() {
        let expiry = build(None, None, 365 * DAY);
        assert_eq!(expiry, Ok(Expiry::default()));
        assert_eq!(expiry.map(|e| e.is_unbounded()), Ok(true));
        assert_eq!(build(Some(Value::Null), Some(json!("")), DAY), Ok(Expiry::default()));
    }

    #[test]
    fn from_request_relative_values() {
        assert_eq!(
            build(Some(json!("1d")), Some(json!("30d")), 365 * DAY),
            Ok(Expiry { sliding: Some(DAY), final_at: Some(NOW + 30 * DAY) })
        );
        assert_eq!(build(Some(json!(3600)), None, 365 * DAY).map(|e| e.is_unbounded()), Ok(false));
    }

    #[test]
    fn from_request_absolute_finaltime() {
        assert_eq!(
            build(None, Some(json!("2025-06-01")), 365 * DAY),
            Ok(Expiry { sliding: None, final_at: Some(1_748_736_000) })
        );
        assert_eq!(
            build(None, Some(json!(NOW + 10)), 365 * DAY),
            Ok(Expiry { sliding: None, final_at: Some(NOW + 10) })
        );
    }

    #[test]
    fn caps_sliding_at_max() {
        assert_eq!(build(Some(json!("10y")), None, 30 * DAY), Ok(Expiry { sliding: Some(30 * DAY), final_at: None }));
        assert_eq!(build(Some(json!("30d")), None, 30 * DAY), Ok(Expiry { sliding: Some(30 * DAY), final_at: None }));
    }

    #[test]
    fn caps_final_at_max() {
        assert_eq!(
            build(None, Some(json!("10y")), 30 * DAY),
            Ok(Expiry { sliding: None, final_at: Some(NOW + 30 * DAY) })
        );
        assert_eq!(
            build(None, Some(json!("2099-01-01T00:00:00Z")), 30 * DAY),
            Ok(Expiry { sliding: None, final_at: Some(NOW + 30 * DAY) })
        );
        // A huge relative final time is capped, not rejected as overflow.
        assert_eq!(
            build(None, Some(json!("9223372036854775807s")), DAY),
            Ok(Expiry { sliding: None, final_at: Some(NOW + DAY) })
        );
    }

    #[test]
    fn past_finaltime_is_rejected() {
        let past = Err(ExpiryError::Past("finaltime"));
        assert_eq!(build(None, Some(json!("2024-12-31")), DAY), past);
        assert_eq!(build(None, Some(json!("2024-12-31T23:59:59Z")), DAY), past);
        // Exactly now is not in the future.
        assert_eq!(build(None, Some(json!("2025-01-01T00:00:00Z")), DAY), past);
    }

    #[test]
    fn absolute_slidingtime_is_rejected() {
        let format = Err(ExpiryError::Format("slidingtime"));
        assert_eq!(build(Some(json!("2026-01-01")), None, DAY), format);
        assert_eq!(build(Some(json!("2026-01-01T10:00:00Z")), None, DAY), format);
        // A bare integer is a period here, however large: seconds, capped.
        assert_eq!(build(Some(json!(NOW + 1)), None, DAY), Ok(Expiry { sliding: Some(DAY), final_at: None }));
    }

    #[test]
    fn from_request_reports_the_failing_field() {
        assert_eq!(build(Some(json!("5x")), Some(json!("1d")), DAY), Err(ExpiryError::Format("slidingtime")));
        assert_eq!(build(Some(json!("1d")), Some(json!(true)), DAY), Err(ExpiryError::Format("finaltime")));
    }

    #[test]
    fn expires_at_combinations() {
        let none = Expiry::default();
        assert_eq!(none.expires_at(NOW), None);
        assert!(none.is_unbounded());

        let sliding = Expiry { sliding: Some(DAY), final_at: None };
        assert_eq!(sliding.expires_at(NOW), Some(NOW + DAY));
        assert_eq!(sliding.expires_at(NOW + 5), Some(NOW + 5 + DAY));
        assert!(!sliding.is_unbounded());

        let fixed = Expiry { sliding: None, final_at: Some(NOW + 10) };
        assert_eq!(fixed.expires_at(NOW), Some(NOW + 10));
        assert!(!fixed.is_unbounded());

        // Sliding end before the fixed end: the sliding end wins.
        let both = Expiry { sliding: Some(DAY), final_at: Some(NOW + 30 * DAY) };
        assert_eq!(both.expires_at(NOW), Some(NOW + DAY));
        // Sliding end after the fixed end: the fixed end wins.
        assert_eq!(both.expires_at(NOW + 29 * DAY + 1), Some(NOW + 30 * DAY));

        let huge = Expiry { sliding: Some(i64::MAX), final_at: None };
        assert_eq!(huge.expires_at(NOW), Some(i64::MAX));
    }
}
