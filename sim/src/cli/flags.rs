//! Value parsers for the numeric flags: the error names the range expected, also for a
//! negative number. (Without them, clap reads `--seed -1` as a flag `-1` and says "unexpected
//! argument '-1'", which names neither the flag nor what it takes; each numeric flag is
//! declared with `allow_negative_numbers` and one of these parsers, and clap puts the flag
//! before the message: "invalid value '-1' for '--seed `<N>`': expected a seed, ...".)

/// A whole number from `min` to `max`, for a flag that takes `what` ("a seed").
///
/// ```
/// let seed = imps_sim::cli::flags::whole::<u64>("a seed", 0, 9);
/// assert_eq!(seed("7"), Ok(7));
/// assert_eq!(seed("-1").unwrap_err(), "expected a seed, a whole number from 0 to 9, found `-1`");
/// ```
pub fn whole<T: TryFrom<u64>>(
    what: &'static str,
    min: u64,
    max: u64,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static {
    move |s: &str| parse(s, min, Some(max)).ok_or_else(|| expected(what, min, Some(max), s))
}

/// A whole number from `min` up (to the largest the flag's type holds).
///
/// ```
/// let threads = imps_sim::cli::flags::at_least::<usize>("a number of threads", 1);
/// assert_eq!(threads("2"), Ok(2));
/// assert_eq!(threads("0").unwrap_err(), "expected a number of threads, a whole number from 1 up, found `0`");
/// ```
pub fn at_least<T: TryFrom<u64>>(
    what: &'static str,
    min: u64,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static {
    move |s: &str| parse(s, min, None).ok_or_else(|| expected(what, min, None, s))
}

fn parse<T: TryFrom<u64>>(s: &str, min: u64, max: Option<u64>) -> Option<T> {
    let n: u64 = s.trim().parse().ok()?;
    let in_range = n >= min && max.is_none_or(|max| n <= max);
    in_range.then(|| T::try_from(n).ok()).flatten()
}

fn expected(what: &str, min: u64, max: Option<u64>, found: &str) -> String {
    let range = match max {
        Some(max) => format!("from {min} to {max}"),
        None => format!("from {min} up"),
    };
    format!("expected {what}, a whole number {range}, found `{found}`")
}
