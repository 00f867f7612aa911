//! Colombian business-day calendar: national holidays of any year and arithmetic on días hábiles.
//!
//! Holidays are computed, not listed, because most of them move: Ley 51 de 1983 ("Ley Emiliani") carries seven of
//! them to the following Monday, and five depend on Easter. The rules applied to every year (the law took effect in
//! 1984; earlier years get the same rules, which is what a caja needs for its history anyway):
//!
//! | rule | holidays |
//! |---|---|
//! | fixed date | 1 Jan, 1 May, 20 Jul, 7 Aug, 8 Dec, 25 Dec (kept even on a Sunday) |
//! | next Monday (Ley 51 de 1983) | 6 Jan, 19 Mar, 29 Jun, 15 Aug, 12 Oct, 1 Nov, 11 Nov (unchanged when already Monday) |
//! | Easter − 3 and − 2 | Jueves Santo, Viernes Santo |
//! | Easter + 43, + 64, + 71 (Mondays) | Ascensión, Corpus Christi, Sagrado Corazón |
//!
//! A business day (día hábil) is a Monday to Friday that is not a holiday.

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use serde::Serialize;

/// How a holiday's date is obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HolidayRule {
    /// Always on its nominal date, even a Sunday.
    Fixed,
    /// Moved to the following Monday unless the nominal date is a Monday (Ley 51 de 1983).
    NextMonday,
    /// A fixed number of days from Easter Sunday.
    Easter,
}

/// One national holiday in a given year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Holiday {
    /// The day the holiday is observed.
    pub date: NaiveDate,
    /// The nominal date before any move to Monday (for Easter-based holidays, the same as `date`).
    pub nominal: NaiveDate,
    /// Spanish name.
    pub name: &'static str,
    /// How the date was obtained.
    pub rule: HolidayRule,
}

const FIXED: [(u32, u32, &str); 6] = [
    (1, 1, "Año Nuevo"),
    (5, 1, "Día del Trabajo"),
    (7, 20, "Día de la Independencia"),
    (8, 7, "Batalla de Boyacá"),
    (12, 8, "Inmaculada Concepción"),
    (12, 25, "Navidad"),
];

const NEXT_MONDAY: [(u32, u32, &str); 7] = [
    (1, 6, "Día de los Reyes Magos"),
    (3, 19, "Día de San José"),
    (6, 29, "San Pedro y San Pablo"),
    (8, 15, "Asunción de la Virgen"),
    (10, 12, "Día de la Raza"),
    (11, 1, "Todos los Santos"),
    (11, 11, "Independencia de Cartagena"),
];

const EASTER_OFFSETS: [(i64, &str); 5] = [
    (-3, "Jueves Santo"),
    (-2, "Viernes Santo"),
    (43, "Ascensión del Señor"),
    (64, "Corpus Christi"),
    (71, "Sagrado Corazón de Jesús"),
];

/// Number of holidays every year has (some may fall on the same day; see [`holidays`]).
pub const HOLIDAYS_PER_YEAR: usize = FIXED.len() + NEXT_MONDAY.len() + EASTER_OFFSETS.len();

/// Easter Sunday of a Gregorian year (anonymous Gregorian algorithm, Meeus/Jones/Butcher).
///
/// Valid for every year chrono can represent from 1583 on; earlier years still get a date, by the same arithmetic.
pub fn easter_sunday(year: i32) -> NaiveDate {
    let a = year.rem_euclid(19);
    let b = year.div_euclid(100);
    let c = year.rem_euclid(100);
    let d = b.div_euclid(4);
    let e = b.rem_euclid(4);
    let f = (b + 8).div_euclid(25);
    let g = (b - f + 1).div_euclid(3);
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c.div_euclid(4);
    let k = c.rem_euclid(4);
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l).div_euclid(451);
    let month = (h + l - 7 * m + 114).div_euclid(31);
    let day = (h + l - 7 * m + 114).rem_euclid(31) + 1;
    // month is 3 or 4 and day 1..=31 by construction of the algorithm.
    NaiveDate::from_ymd_opt(year, month as u32, day as u32)
        .expect("the Easter algorithm yields a day of March or April")
}

/// The observed date of a holiday moved by Ley 51 de 1983: the nominal date if it is a Monday, else the next Monday.
pub fn next_monday(nominal: NaiveDate) -> NaiveDate {
    let days_ahead = (7 - nominal.weekday().num_days_from_monday()) % 7;
    nominal + Duration::days(i64::from(days_ahead))
}

/// The national holidays of `year`, sorted by observed date.
///
/// Always [`HOLIDAYS_PER_YEAR`] entries. Two may share a day (in 2025 San Pedro y San Pablo and Sagrado Corazón both
/// fall on 30 June), so a year has 17 or 18 distinct holiday dates.
pub fn holidays(year: i32) -> Vec<Holiday> {
    let mut out = Vec::with_capacity(HOLIDAYS_PER_YEAR);
    for (month, day, name) in FIXED {
        let date = ymd(year, month, day);
        out.push(Holiday {
            date,
            nominal: date,
            name,
            rule: HolidayRule::Fixed,
        });
    }
    for (month, day, name) in NEXT_MONDAY {
        let nominal = ymd(year, month, day);
        out.push(Holiday {
            date: next_monday(nominal),
            nominal,
            name,
            rule: HolidayRule::NextMonday,
        });
    }
    let easter = easter_sunday(year);
    for (offset, name) in EASTER_OFFSETS {
        let date = easter + Duration::days(offset);
        out.push(Holiday {
            date,
            nominal: date,
            name,
            rule: HolidayRule::Easter,
        });
    }
    out.sort_by_key(|h| h.date);
    out
}

/// True when `date` is a Colombian national holiday.
pub fn is_holiday(date: NaiveDate) -> bool {
    // Computing the year's 18 dates costs well under a microsecond, so no cache is kept.
    holiday_dates(date.year()).contains(&date)
}

/// True when `date` is a día hábil: Monday to Friday and not a holiday.
pub fn is_business_day(date: NaiveDate) -> bool {
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) && !is_holiday(date)
}

/// The first business day strictly after `date`.
pub fn next_business_day(date: NaiveDate) -> NaiveDate {
    YearHolidays::of(date).next_business_day(date)
}

/// The `n`-th business day strictly after `date`; `n = 0` gives `date` itself.
///
/// This is how Ley 1755 de 2015 counts a term: day 1 is the first business day after the day of receipt.
pub fn add_business_days(date: NaiveDate, n: u32) -> NaiveDate {
    let mut holidays = YearHolidays::of(date);
    (0..n).fold(date, |day, _| holidays.next_business_day(day))
}

/// Number of business days in the half-open range `(from, to]` (zero when `to <= from`).
pub fn business_days_between(from: NaiveDate, to: NaiveDate) -> u32 {
    let mut holidays = YearHolidays::of(from);
    let mut count = 0;
    let mut day = from;
    while day < to {
        day = day.succ_opt().expect("dates stay far from chrono's limits");
        if holidays.is_business_day(day) {
            count += 1;
        }
    }
    count
}

/// The holiday dates of one year, recomputed only when a walk over days crosses into another year: a term of
/// fifteen business days then computes them once instead of once per day.
struct YearHolidays {
    year: i32,
    dates: [NaiveDate; HOLIDAYS_PER_YEAR],
}

impl YearHolidays {
    fn of(date: NaiveDate) -> Self {
        Self {
            year: date.year(),
            dates: holiday_dates(date.year()),
        }
    }

    fn is_business_day(&mut self, date: NaiveDate) -> bool {
        if matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
            return false;
        }
        if date.year() != self.year {
            *self = Self::of(date);
        }
        !self.dates.contains(&date)
    }

    fn next_business_day(&mut self, date: NaiveDate) -> NaiveDate {
        let mut day = date;
        loop {
            day = day.succ_opt().expect("dates stay far from chrono's limits");
            if self.is_business_day(day) {
                return day;
            }
        }
    }
}

fn holiday_dates(year: i32) -> [NaiveDate; HOLIDAYS_PER_YEAR] {
    let easter = easter_sunday(year);
    let mut dates = [easter; HOLIDAYS_PER_YEAR];
    let fixed = FIXED.iter().map(|&(m, d, _)| ymd(year, m, d));
    let moved = NEXT_MONDAY
        .iter()
        .map(|&(m, d, _)| next_monday(ymd(year, m, d)));
    let paschal = EASTER_OFFSETS
        .iter()
        .map(|&(offset, _)| easter + Duration::days(offset));
    for (slot, date) in dates.iter_mut().zip(fixed.chain(moved).chain(paschal)) {
        *slot = date;
    }
    dates
}

fn ymd(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).expect("holiday tables hold real calendar days")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("test dates are well formed")
    }

    fn check_year(year: i32, expected: &[&str]) {
        let mut got: Vec<NaiveDate> = holidays(year).into_iter().map(|h| h.date).collect();
        got.dedup();
        let expected: Vec<NaiveDate> = expected.iter().map(|d| date(d)).collect();
        assert_eq!(got, expected, "holidays of {year}");
        for d in &expected {
            assert!(is_holiday(*d), "{d} must be a holiday");
            assert!(!is_business_day(*d), "{d} must not be a business day");
        }
    }

    // Official lists of festivos in Colombia, as published for each year (Ministerio del Interior calendars).
    #[test]
    fn holidays_2024_match_the_official_list() {
        check_year(
            2024,
            &[
                "2024-01-01",
                "2024-01-08",
                "2024-03-25",
                "2024-03-28",
                "2024-03-29",
                "2024-05-01",
                "2024-05-13",
                "2024-06-03",
                "2024-06-10",
                "2024-07-01",
                "2024-07-20",
                "2024-08-07",
                "2024-08-19",
                "2024-10-14",
                "2024-11-04",
                "2024-11-11",
                "2024-12-08",
                "2024-12-25",
            ],
        );
    }

    #[test]
    fn holidays_2025_match_the_official_list() {
        // 17 dates: San Pedro y San Pablo and Sagrado Corazón share 30 June.
        check_year(
            2025,
            &[
                "2025-01-01",
                "2025-01-06",
                "2025-03-24",
                "2025-04-17",
                "2025-04-18",
                "2025-05-01",
                "2025-06-02",
                "2025-06-23",
                "2025-06-30",
                "2025-07-20",
                "2025-08-07",
                "2025-08-18",
                "2025-10-13",
                "2025-11-03",
                "2025-11-17",
                "2025-12-08",
                "2025-12-25",
            ],
        );
    }

    #[test]
    fn holidays_2026_match_the_official_list() {
        check_year(
            2026,
            &[
                "2026-01-01",
                "2026-01-12",
                "2026-03-23",
                "2026-04-02",
                "2026-04-03",
                "2026-05-01",
                "2026-05-18",
                "2026-06-08",
                "2026-06-15",
                "2026-06-29",
                "2026-07-20",
                "2026-08-07",
                "2026-08-17",
                "2026-10-12",
                "2026-11-02",
                "2026-11-16",
                "2026-12-08",
                "2026-12-25",
            ],
        );
    }

    #[test]
    fn easter_matches_known_dates() {
        // Western Easter dates from published tables.
        for (year, expected) in [
            (1961, "1961-04-02"),
            (2000, "2000-04-23"),
            (2008, "2008-03-23"),
            (2011, "2011-04-24"),
            (2019, "2019-04-21"),
            (2024, "2024-03-31"),
            (2025, "2025-04-20"),
            (2026, "2026-04-05"),
            (2027, "2027-03-28"),
            (2038, "2038-04-25"),
            (2285, "2285-03-22"),
        ] {
            assert_eq!(easter_sunday(year), date(expected), "Easter {year}");
        }
    }

    #[test]
    fn business_day_arithmetic_skips_weekends_and_holidays() {
        // Thursday 24 Dec 2026: Friday 25 is Navidad, then a weekend.
        assert_eq!(next_business_day(date("2026-12-24")), date("2026-12-28"));
        // Holy week 2026: Thursday 2 and Friday 3 April.
        assert_eq!(next_business_day(date("2026-04-01")), date("2026-04-06"));
        assert_eq!(add_business_days(date("2026-04-01"), 0), date("2026-04-01"));
        assert_eq!(add_business_days(date("2026-03-31"), 2), date("2026-04-06"));
        assert_eq!(
            business_days_between(date("2026-03-31"), date("2026-04-06")),
            2
        );
        assert_eq!(
            business_days_between(date("2026-04-06"), date("2026-03-31")),
            0
        );
        assert!(is_business_day(date("2026-01-06")), "Reyes moved to 12 Jan");
        assert!(!is_business_day(date("2026-01-10")), "Saturday");
    }

    /// An independent Easter computation (Gauss's algorithm with its exceptions) to cross-check Meeus's.
    fn gauss_easter(year: i32) -> NaiveDate {
        let a = year % 19;
        let b = year % 4;
        let c = year % 7;
        let k = year / 100;
        let p = (13 + 8 * k) / 25;
        let q = k / 4;
        let m = (15 - p + k - q) % 30;
        let n = (4 + k - q) % 7;
        let d = (19 * a + m) % 30;
        let e = (2 * b + 4 * c + 6 * d + n) % 7;
        let mut day_after_march_21 = 22 + d + e;
        // Gauss's two exceptions move Easter one week earlier.
        let april_26 = d == 29 && e == 6;
        let april_25_late = d == 28 && e == 6 && (11 * m + 11) % 30 < 19;
        if april_26 || april_25_late {
            day_after_march_21 -= 7;
        }
        ymd(year, 3, 1) + Duration::days(i64::from(day_after_march_21 - 1))
    }

    proptest! {
        #[test]
        fn easter_agrees_with_gauss(year in 1583i32..4000) {
            let easter = easter_sunday(year);
            prop_assert_eq!(easter, gauss_easter(year));
            prop_assert_eq!(easter.weekday(), Weekday::Sun);
            let earliest = ymd(year, 3, 22);
            let latest = ymd(year, 4, 25);
            prop_assert!(easter >= earliest && easter <= latest);
        }

        #[test]
        fn every_year_follows_the_rules(year in 1984i32..2400) {
            let all = holidays(year);
            prop_assert_eq!(all.len(), HOLIDAYS_PER_YEAR);
            let mut distinct: Vec<NaiveDate> = all.iter().map(|h| h.date).collect();
            distinct.dedup();
            let shared = HOLIDAYS_PER_YEAR - distinct.len();
            let san_pedro = all.iter().find(|h| h.name == "San Pedro y San Pablo").map(|h| h.date);
            let sagrado = all.iter().find(|h| h.name == "Sagrado Corazón de Jesús").map(|h| h.date);
            // The only pair that can coincide: both can land on the Monday between 29 June and 5 July.
            prop_assert_eq!(shared, usize::from(san_pedro == sagrado));
            for h in &all {
                prop_assert_eq!(h.date.year(), year);
                match h.rule {
                    HolidayRule::Fixed => prop_assert_eq!(h.date, h.nominal),
                    HolidayRule::NextMonday => {
                        prop_assert_eq!(h.date.weekday(), Weekday::Mon);
                        let moved = (h.date - h.nominal).num_days();
                        prop_assert!((0..7).contains(&moved), "{} moved {} days", h.name, moved);
                    }
                    HolidayRule::Easter => {
                        let expected = match h.name {
                            "Jueves Santo" => Weekday::Thu,
                            "Viernes Santo" => Weekday::Fri,
                            _ => Weekday::Mon,
                        };
                        prop_assert_eq!(h.date.weekday(), expected);
                    }
                }
                if h.date.weekday() == Weekday::Sun {
                    prop_assert_eq!(h.rule, HolidayRule::Fixed);
                }
                prop_assert!(is_holiday(h.date));
            }
        }

        #[test]
        fn adding_business_days_lands_on_business_days(
            start in 0i64..40_000,
            n in 1u32..60,
        ) {
            let from = date("1990-01-01") + Duration::days(start);
            let to = add_business_days(from, n);
            prop_assert!(is_business_day(to));
            prop_assert_eq!(business_days_between(from, to), n);
            // `to` is the first day reaching n: the day before it still counts n - 1.
            let before = to.pred_opt().expect("far from chrono's limits");
            prop_assert_eq!(business_days_between(from, before), n - 1);
        }
    }
}
