//! Transparent huge pages for the checker's heap, through glibc's own switch.
//!
//! The explorer's look-ups are random reads into the visited set and the state array, which
//! reach gigabytes: with 4 KiB pages nearly every look-up misses the TLB as well as the
//! cache, and in a virtual machine a page walk costs several memory reads of its own. Where
//! the kernel gives huge pages only to memory marked for them (THP mode `madvise`, as on this
//! machine), glibc marks its heaps when the tunable `glibc.malloc.hugetlb=1` is set. Tunables
//! are read once, at start-up, from the environment, so `imps check` and `imps sweep` start
//! themselves again with it set ([`restart_with_huge_pages`]) unless `GLIBC_TUNABLES` already
//! says what to do about it.
//!
//! Measured (README, "Speed and memory of the checker"): 1 x 4 x 2 on one thread, two runs
//! side by side each time so that both see the same machine, explored in 93.5-93.9 s with
//! huge pages against 112.0-117.5 s with `glibc.malloc.hugetlb=0`, at the same peak RSS
//! (3.76-3.79 GB). Marking only the blocks of 2 MiB and more from a global allocator was
//! tried first and gave half as many huge pages (2 x 2 x 2: 0.32 GB of 1.12 against 0.58 of
//! 1.16); the likely cause is that a block that grows is moved by `mremap`, which splits the
//! huge pages it had unless the new place happens to line up.

/// What of this process's memory is resident, and how much of it in transparent huge pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resident {
    /// Resident bytes (`Rss`).
    pub rss: u64,
    /// Of those, the bytes in transparent huge pages (`AnonHugePages`).
    pub huge: u64,
}

/// This process's [`Resident`] memory now, from `/proc/self/smaps_rollup` (`None` where the
/// kernel does not give it). Marking the heaps is a request: the kernel gives a huge page
/// only where a whole aligned 2 MiB of a marked mapping is touched and a free huge page is at
/// hand, and moving a block (`mremap`, as a growing array is moved) to a place that does not
/// line up splits its huge pages into small ones. `--stats` reports it at the end of the
/// exploration, to tell how much of the explorer's memory the huge pages actually cover.
pub fn resident() -> Option<Resident> {
    parse_rollup(&std::fs::read_to_string("/proc/self/smaps_rollup").ok()?)
}

/// The [`Resident`] figures of the text of a `smaps_rollup` file.
pub fn parse_rollup(text: &str) -> Option<Resident> {
    Some(Resident {
        rss: kb_field(text, "Rss")?,
        huge: kb_field(text, "AnonHugePages")?,
    })
}

/// The field `name` of a `/proc` file whose lines read `Name: N kB` (`status`,
/// `smaps_rollup`), in bytes; `None` when it is missing, not a number or in another unit.
pub fn kb_field(text: &str, name: &str) -> Option<u64> {
    let rest = text
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))?;
    let mut words = rest.split_whitespace();
    let n: u64 = words.next()?.parse().ok()?;
    (words.next()? == "kB").then_some(n * 1024)
}

/// The glibc tunable that marks the heaps for transparent huge pages.
pub const TUNABLE: &str = "glibc.malloc.hugetlb";

/// The `GLIBC_TUNABLES` value that adds huge pages to `current` (the variable's value, if
/// set), or `None` when `current` already sets the tunable, either way: the user's choice
/// stands, and a restarted process does not restart again.
pub fn tunables_with_huge_pages(current: Option<&str>) -> Option<String> {
    match current {
        Some(c) if setting(c).is_some() => None,
        Some(c) if !c.is_empty() => Some(format!("{c}:{TUNABLE}=1")),
        _ => Some(format!("{TUNABLE}=1")),
    }
}

/// The value that a `GLIBC_TUNABLES` string (`name=value` pairs joined by `:`) gives
/// [`TUNABLE`], if any.
fn setting(tunables: &str) -> Option<&str> {
    tunables
        .split(':')
        .filter_map(|t| t.split_once('='))
        .find_map(|(k, v)| (k == TUNABLE).then_some(v))
}

/// Whether this process runs with glibc's heaps marked for huge pages: Linux with glibc,
/// and `GLIBC_TUNABLES` sets the tunable to 1 or 2 (`imps check --stats` reports it).
pub fn in_effect() -> bool {
    cfg!(all(target_os = "linux", target_env = "gnu"))
        && std::env::var("GLIBC_TUNABLES").is_ok_and(|v| matches!(setting(&v), Some("1" | "2")))
}

/// Start this program again, with the same arguments, with huge pages on (see the module
/// documentation). Returns only when it does not: not Linux with glibc, `GLIBC_TUNABLES`
/// already sets the tunable or is not UTF-8, or the program cannot be started again (then
/// it goes on as it is, without huge pages). Call it first thing in `main`, before any
/// thread or output.
pub fn restart_with_huge_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        let current = match std::env::var_os("GLIBC_TUNABLES") {
            None => None,
            Some(v) => match v.into_string() {
                Ok(v) => Some(v),
                Err(_) => return,
            },
        };
        let Some(tunables) = tunables_with_huge_pages(current.as_deref()) else {
            return;
        };
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let mut args = std::env::args_os();
        let mut cmd = std::process::Command::new(exe);
        if let Some(arg0) = args.next() {
            cmd.arg0(arg0);
        }
        // `exec` returns only on failure; the run goes on without huge pages.
        let _failed = cmd.args(args).env("GLIBC_TUNABLES", tunables).exec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tunable_is_added_once_and_a_users_setting_stands() {
        assert_eq!(
            tunables_with_huge_pages(None).as_deref(),
            Some("glibc.malloc.hugetlb=1")
        );
        assert_eq!(
            tunables_with_huge_pages(Some("")).as_deref(),
            Some("glibc.malloc.hugetlb=1")
        );
        assert_eq!(
            tunables_with_huge_pages(Some("glibc.malloc.arena_max=2")).as_deref(),
            Some("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1")
        );
        for set in [
            "glibc.malloc.hugetlb=0",
            "glibc.malloc.hugetlb=1",
            "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=2",
        ] {
            assert_eq!(tunables_with_huge_pages(Some(set)), None, "{set}");
        }
        // What the restarted process sees does not restart it again.
        let once = tunables_with_huge_pages(Some("glibc.malloc.arena_max=2")).expect("added");
        assert_eq!(tunables_with_huge_pages(Some(&once)), None);
    }

    #[test]
    fn the_rollup_gives_resident_and_huge_bytes() {
        let text =
            "55d0c0a00000-7ffd3b5fe000 ---p 00000000 00:00 0                          [rollup]\n\
                    Rss:             1886896 kB\n\
                    Pss:             1886000 kB\n\
                    Pss_Anon:        1880000 kB\n\
                    AnonHugePages:    581632 kB\n\
                    ShmemPmdMapped:        0 kB\n";
        assert_eq!(
            parse_rollup(text),
            Some(Resident {
                rss: 1_886_896 * 1024,
                huge: 581_632 * 1024
            })
        );
        // A field missing, not a number, or in another unit: nothing rather than a guess.
        assert_eq!(parse_rollup("Rss: 10 kB\n"), None);
        assert_eq!(parse_rollup("Rss: ten kB\nAnonHugePages: 0 kB\n"), None);
        assert_eq!(parse_rollup("Rss: 10 MB\nAnonHugePages: 0 kB\n"), None);
        assert_eq!(parse_rollup("RssFile: 10 kB\nAnonHugePages: 0 kB\n"), None);
    }
}
