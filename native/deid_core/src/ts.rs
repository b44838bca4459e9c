//! UTC timestamps as microseconds since 1970-01-01, parsed from the RFC 3339 subset that the
//! reference decoder (msgspec, then `datetime.fromisoformat`) reads the same way.

pub const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of a day number.
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

pub fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

fn digits(b: &[u8]) -> Option<i64> {
    let mut v: i64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

/// A valid `YYYY-MM-DD` (exactly ten ASCII bytes) as (year, month, day); None otherwise.
pub fn parse_date(b: &[u8]) -> Option<(i64, i64, i64)> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y = digits(&b[0..4])?;
    let m = digits(&b[5..7])?;
    let d = digits(&b[8..10])?;
    if y < 1 || !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    Some((y, m, d))
}

/// `YYYY-MM-DDTHH:MM:SS[.f{1,6}](Z|+HH:MM|-HH:MM)` as UTC microseconds since the epoch.
/// None for anything else (the caller declines: the reference decoder decides).
pub fn parse_ts(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = parse_date(&b[0..10])?;
    let h = digits(&b[11..13])?;
    let mi = digits(&b[14..16])?;
    let sec = digits(&b[17..19])?;
    if h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let mut i = 19;
    let mut frac: i64 = 0;
    if b[i] == b'.' {
        let start = i + 1;
        let mut j = start;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let n = j - start;
        if n == 0 || n > 6 {
            return None;
        }
        frac = digits(&b[start..j])?;
        for _ in n..6 {
            frac *= 10;
        }
        i = j;
    }
    let rest = &b[i..];
    let offset_minutes = if rest == b"Z" {
        0
    } else if rest.len() == 6 && (rest[0] == b'+' || rest[0] == b'-') && rest[3] == b':' {
        let oh = digits(&rest[1..3])?;
        let om = digits(&rest[4..6])?;
        if oh > 23 || om > 59 {
            return None;
        }
        let m = oh * 60 + om;
        if rest[0] == b'-' {
            -m
        } else {
            m
        }
    } else {
        return None;
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_minutes * 60;
    let micros = secs * 1_000_000 + frac;
    let (uy, _, _) = civil_from_days(micros.div_euclid(MICROS_PER_DAY));
    if !(1..=9999).contains(&uy) {
        return None;
    }
    Some(micros)
}

/// Broken-down UTC time of a timestamp.
pub struct Civil {
    pub day_number: i64,
    pub y: i64,
    pub m: i64,
    pub d: i64,
    pub hh: i64,
    pub mm: i64,
    pub ss: i64,
    pub us: i64,
}

pub fn civil(micros: i64) -> Civil {
    let day_number = micros.div_euclid(MICROS_PER_DAY);
    let rem = micros.rem_euclid(MICROS_PER_DAY);
    let (y, m, d) = civil_from_days(day_number);
    let secs = rem / 1_000_000;
    Civil {
        day_number,
        y,
        m,
        d,
        hh: secs / 3600,
        mm: (secs / 60) % 60,
        ss: secs % 60,
        us: rem % 1_000_000,
    }
}

/// `datetime.isoformat()` of a UTC datetime with `+00:00` replaced by `Z` (format_utc).
pub fn format_utc(micros: i64, out: &mut String) {
    use std::fmt::Write;
    let c = civil(micros);
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        c.y, c.m, c.d, c.hh, c.mm, c.ss
    );
    if c.us != 0 {
        let _ = write!(out, ".{:06}", c.us);
    }
    out.push('Z');
}

/// The first 16 characters of `isoformat()`: `YYYY-MM-DDTHH:MM`.
pub fn iso16(c: &Civil) -> String {
    format!("{:04}-{:02}-{:02}T{:02}:{:02}", c.y, c.m, c.d, c.hh, c.mm)
}

/// ISO calendar (year, week) of a day number, as `date.isocalendar()`.
pub fn iso_week(day_number: i64) -> (i64, i64) {
    // 1970-01-01 was a Thursday; ISO weekday Monday = 1.
    let weekday = (day_number + 3).rem_euclid(7) + 1;
    let thursday = day_number - weekday + 4;
    let (ty, _, _) = civil_from_days(thursday);
    let jan1 = days_from_civil(ty, 1, 1);
    (ty, (thursday - jan1) / 7 + 1)
}

/// Python's float floor division `a // b` (Objects/floatobject.c float_divmod).
pub fn py_floordiv(vx: f64, wx: f64) -> f64 {
    let mut m = vx % wx;
    let mut div = (vx - m) / wx;
    if m != 0.0 {
        if (wx < 0.0) != (m < 0.0) {
            m += wx;
            div -= 1.0;
        }
    } else {
        m = 0.0f64.copysign(wx);
    }
    let _ = m;
    if div != 0.0 {
        let mut floordiv = div.floor();
        if div - floordiv > 0.5 {
            floordiv += 1.0;
        }
        floordiv
    } else {
        0.0f64.copysign(vx / wx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_days() {
        for z in [-719_162, -1, 0, 1, 10_000, 2_932_896] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
    }

    #[test]
    fn parses_offsets_and_fractions() {
        let a = parse_ts("2026-01-01T05:30:00+05:30").unwrap();
        let b = parse_ts("2026-01-01T00:00:00Z").unwrap();
        assert_eq!(a, b);
        assert_eq!(parse_ts("2026-01-01T00:00:00.5Z").unwrap() - b, 500_000);
        assert!(parse_ts("2026-01-01T00:00:00.1234567Z").is_none());
        assert!(parse_ts("2026-01-01 00:00:00Z").is_none());
        assert!(parse_ts("2026-02-30T00:00:00Z").is_none());
        let mut s = String::new();
        format_utc(b + 123, &mut s);
        assert_eq!(s, "2026-01-01T00:00:00.000123Z");
    }

    #[test]
    fn iso_weeks() {
        // 2026-01-01 is a Thursday: week 1 of 2026; 2027-01-01 (Friday) is week 53 of 2026.
        assert_eq!(iso_week(days_from_civil(2026, 1, 1)), (2026, 1));
        assert_eq!(iso_week(days_from_civil(2027, 1, 1)), (2026, 53));
        assert_eq!(iso_week(days_from_civil(2024, 12, 30)), (2025, 1));
    }

    #[test]
    fn floor_division() {
        assert_eq!(py_floordiv(-0.5, 60.0), -1.0);
        assert_eq!(py_floordiv(119.999, 60.0), 1.0);
        assert_eq!(py_floordiv(120.0, 60.0), 2.0);
    }
}
