//! Budget periods on calendar boundaries in a configured time zone: daily at
//! local midnight, weekly on Monday, monthly on the 1st. A period is a pure
//! function of the clock, so budgets reset at the boundary and never on first
//! use (REFERENCE §4.4), and daylight-saving days are 23 or 25 hours long.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};

pub use paved_shared::budgets::Period;

/// The period containing `now` in `tz`: `[start, end)` as instants.
pub fn bounds(
    period: Period,
    tz: &TimeZone,
    now: Timestamp,
) -> Result<(Timestamp, Timestamp), jiff::Error> {
    let local: Zoned = now.to_zoned(tz.clone());
    let today = local.date();
    let first: Date = match period {
        Period::Daily => today,
        Period::Weekly => {
            let back = today.weekday().to_monday_zero_offset();
            today.checked_sub(i64::from(back).days())?
        }
        Period::Monthly => today.first_of_month(),
    };
    let next: Date = match period {
        Period::Daily => first.checked_add(1.day())?,
        Period::Weekly => first.checked_add(7.days())?,
        Period::Monthly => first.checked_add(1.month())?,
    };
    // `to_zoned` resolves a midnight that a DST change skips to the first instant after it.
    let start = first.to_zoned(tz.clone())?.timestamp();
    let end = next.to_zoned(tz.clone())?.timestamp();
    Ok((start, end))
}

/// Looks up an IANA time zone (`Europe/Berlin`, `UTC`), naming the problem when unknown.
pub fn time_zone(name: &str) -> Result<TimeZone, String> {
    TimeZone::get(name)
        .map_err(|_| format!("`{name}` is not a time zone name such as Europe/Berlin or UTC"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn months_start_on_the_first_in_the_configured_zone() {
        let berlin = time_zone("Europe/Berlin").unwrap();
        // 2026-02-28 23:30 UTC is already March 1st in Berlin.
        let (start, end) = bounds(Period::Monthly, &berlin, at("2026-02-28T23:30:00Z")).unwrap();
        assert_eq!(start, at("2026-02-28T23:00:00Z"));
        assert_eq!(
            end,
            at("2026-03-31T22:00:00Z"),
            "DST starts in March: the month ends at 22:00 UTC"
        );
        // One second before the boundary is still the previous period; the boundary itself the next.
        let (before, _) = bounds(Period::Monthly, &berlin, at("2026-02-28T22:59:59Z")).unwrap();
        assert_eq!(before, at("2026-01-31T23:00:00Z"));
    }

    #[test]
    fn weeks_start_on_monday_and_days_follow_daylight_saving() {
        let utc = time_zone("UTC").unwrap();
        // 2026-11-27 is a Friday.
        let (start, end) = bounds(Period::Weekly, &utc, at("2026-11-27T10:00:00Z")).unwrap();
        assert_eq!(start, at("2026-11-23T00:00:00Z"));
        assert_eq!(end, at("2026-11-30T00:00:00Z"));
        let (monday, _) = bounds(Period::Weekly, &utc, at("2026-11-30T00:00:00Z")).unwrap();
        assert_eq!(monday, at("2026-11-30T00:00:00Z"));
        // The day DST ends in New York lasts 25 hours.
        let ny = time_zone("America/New_York").unwrap();
        let (start, end) = bounds(Period::Daily, &ny, at("2026-11-01T12:00:00Z")).unwrap();
        assert_eq!(end.as_second() - start.as_second(), 25 * 3600);
    }

    #[test]
    fn names_parse_and_unknown_zones_are_named() {
        assert_eq!(Period::parse("weekly"), Some(Period::Weekly));
        assert_eq!(Period::parse("yearly"), None);
        assert!(time_zone("Mars/Olympus")
            .unwrap_err()
            .contains("Mars/Olympus"));
    }
}
