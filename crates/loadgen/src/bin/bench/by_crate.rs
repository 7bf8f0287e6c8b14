//! `bench --instructions --by-crate`: what each row adds to an order, attributed to the crate
//! of the function that ran each instruction, from the callgrind files `--keep-profiles` keeps.
//!
//! The question it answers is whose work a span is: this project's, or the libraries' it is
//! built on. Each file is read through `callgrind_annotate` (valgrind's own reader), per
//! function, exclusive of callees; a function's crate is the first segment of its Rust path
//! (for `<T as path::Trait>::f`, the trait's when the type has no path of its own). It is
//! meaningful on a build that keeps functions apart: the profiling build of BENCHMARKS.md
//! ("The profile"), not the release build, whose whole-program optimisation inlines one
//! crate's functions into another's.

use std::{collections::BTreeMap, path::Path, process::Command};

use super::SERVICES;

/// Instructions an order of one row, by crate.
pub(super) type ByCrate = BTreeMap<String, f64>;

/// glibc's allocator and the C library's copies, which every crate calls: named apart, since
/// they are the largest entries of what tracing adds.
const ALLOCATOR: &str = "(glibc malloc, free)";
const COPIES: &str = "(memcpy, memmove, memset)";
/// A function with no Rust path: the C library, the dynamic loader, an unknown address.
const OTHER: &str = "(other C and unknown)";

/// The instructions an order of the row whose files are in `dir` (`loaded/<service>` and
/// `idle/<service>`, as `--keep-profiles` keeps them), by crate.
pub(super) fn row(dir: &Path, orders: u64) -> Result<ByCrate, String> {
    let mut by_crate = ByCrate::new();
    for service in SERVICES {
        for (run, sign) in [("loaded", 1.0), ("idle", -1.0)] {
            let text = annotate(&dir.join(run).join(service))?;
            for (function, count) in functions(&text) {
                *by_crate.entry(crate_of(function).to_owned()).or_default() +=
                    sign * count as f64 / orders as f64;
            }
        }
    }
    Ok(by_crate)
}

/// Prints what each of `rows` adds to an order against `baseline`, by crate, one column a
/// row, the crates in the order of the last row's, largest first.
pub(super) fn print(baseline: (&str, &ByCrate), rows: &[(&str, ByCrate)]) {
    let added: Vec<ByCrate> = rows
        .iter()
        .map(|(_, row)| against(row, baseline.1))
        .collect();
    let Some(last) = added.last() else {
        return;
    };
    let mut crates: Vec<&String> = last.keys().collect();
    crates.sort_by(|a, b| last[*b].total_cmp(&last[*a]));
    println!(
        "\nby crate: instructions an order added against {}, exclusive of callees, summed over the four services (meaningful on the profiling build: BENCHMARKS.md, \"The profile\")\n",
        baseline.0
    );
    let line = |label: &str, value: &dyn Fn(&ByCrate) -> f64| {
        let mut text = format!("{label:<40}");
        for row in &added {
            text.push_str(&format!(" {:>16.0}", value(row)));
        }
        println!("{text}");
    };
    let mut head = format!("{:<40}", "crate");
    for (name, _) in rows {
        head.push_str(&format!(" {name:>16}"));
    }
    println!("{head}");
    for name in crates.iter().take(SHOWN) {
        line(name, &|row| row.get(*name).copied().unwrap_or(0.0));
    }
    line("the rest", &|row| {
        crates
            .iter()
            .skip(SHOWN)
            .map(|name| row.get(*name).copied().unwrap_or(0.0))
            .sum()
    });
    line("all", &|row| row.values().sum());
}

/// Crates printed by name; the others are summed in one line.
const SHOWN: usize = 16;

/// `row` less `baseline`, crate by crate.
fn against(row: &ByCrate, baseline: &ByCrate) -> ByCrate {
    let mut added = row.clone();
    for (name, count) in baseline {
        *added.entry(name.clone()).or_default() -= count;
    }
    added
}

/// `callgrind_annotate`'s table of `file`: exclusive counts per function, every function.
fn annotate(file: &Path) -> Result<String, String> {
    let output = Command::new("callgrind_annotate")
        // Instructions only: a file of `--cache-sim` has nine counts a line.
        .args([
            "--inclusive=no",
            "--threshold=100",
            "--auto=no",
            "--show=Ir",
        ])
        .arg(file)
        .output()
        .map_err(|e| format!("callgrind_annotate: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "callgrind_annotate {}: {}",
            file.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The (function, count) lines of a `callgrind_annotate` table: `1,234 (0.5%)  file:function
/// [object]`, the percentage there in newer versions only. The program's totals are not a
/// function.
fn functions(table: &str) -> impl Iterator<Item = (&str, u64)> {
    table.lines().filter_map(|line| {
        let line = line.trim_start();
        let (count, rest) = line.split_once(char::is_whitespace)?;
        let count: u64 = count.replace(',', "").parse().ok()?;
        let rest = rest.trim_start();
        let rest = match rest.strip_prefix('(') {
            Some(percent) => percent.split_once(')')?.1.trim_start(),
            None => rest,
        };
        let function = rest
            .rsplit_once(" [")
            .map_or(rest, |(name, _)| name)
            .trim_end();
        if function.is_empty() || function.starts_with("PROGRAM TOTALS") {
            return None;
        }
        Some((without_file(function), count))
    })
}

/// `path/to/file.rs:crate::f` → `crate::f`: the file ends at the first colon that is not half
/// of a Rust path's `::`.
fn without_file(function: &str) -> &str {
    let bytes = function.as_bytes();
    for (i, byte) in bytes.iter().enumerate() {
        let single =
            *byte == b':' && bytes.get(i + 1) != Some(&b':') && (i == 0 || bytes[i - 1] != b':');
        if single {
            return &function[i + 1..];
        }
    }
    function
}

/// The crate a function belongs to: the first segment of its path (`<Type as Trait>::f`: the
/// type's, or the trait's for a type with no path, such as a generic `T`).
fn crate_of(function: &str) -> &str {
    let bare = function.trim_start_matches(['<', '&']);
    if is_allocator(bare) {
        return ALLOCATOR;
    }
    if ["memcpy", "memmove", "memset"]
        .iter()
        .any(|c| bare.contains(c))
    {
        return COPIES;
    }
    let bare = bare.strip_prefix("mut ").unwrap_or(bare);
    let (subject, trait_path) = match bare.split_once(" as ") {
        Some((subject, rest)) => (subject, Some(rest)),
        None => (bare, None),
    };
    let first = |path: &str| -> Option<usize> { path.find("::") };
    match (first(subject), trait_path) {
        (Some(end), _) if is_crate_name(&subject[..end]) => &subject[..end],
        (_, Some(path)) => match first(path) {
            Some(end) if is_crate_name(&path[..end]) => &path[..end],
            _ => OTHER,
        },
        _ => OTHER,
    }
}

/// glibc's malloc, free and their helpers, and Rust's allocation shims.
fn is_allocator(function: &str) -> bool {
    const NAMES: [&str; 12] = [
        "malloc",
        "free",
        "realloc",
        "calloc",
        "memalign",
        "_int_",
        "unlink_chunk",
        "tcache",
        "__rdl_",
        "__rust_alloc",
        "__rust_dealloc",
        "__rust_realloc",
    ];
    let name = function.rsplit("::").next().unwrap_or(function);
    !function.contains("::") && NAMES.iter().any(|n| name.contains(n))
        || function.starts_with("__rustc::__r")
        || function.starts_with("alloc::raw_vec::")
}

fn is_crate_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::{ALLOCATOR, COPIES, OTHER, crate_of, functions};

    #[test]
    fn a_function_is_charged_to_the_crate_of_its_path() {
        for (function, expected) in [
            (
                "tracing_subscriber::registry::sharded::Registry::get",
                "tracing_subscriber",
            ),
            (
                "<tracing_subscriber::layer::layered::Layered<L,S> as tracing_core::subscriber::Subscriber>::new_span'2",
                "tracing_subscriber",
            ),
            (
                "<T as opentelemetry::global::trace::ObjectSafeSpan>::end_with_timestamp",
                "opentelemetry",
            ),
            ("<&mut W as core::fmt::Write>::write_str", "core"),
            ("telemetry::otlp::common::key_value", "telemetry"),
            ("__memcpy_avx_unaligned_erms", COPIES),
            ("_int_free", ALLOCATOR),
            ("malloc_consolidate", ALLOCATOR),
            ("__rustc::__rdl_alloc", ALLOCATOR),
            (
                "alloc::raw_vec::RawVecInner<A>::reserve::do_reserve_and_handle",
                ALLOCATOR,
            ),
            ("alloc::string::String::push_str", "alloc"),
            ("clock_gettime@@GLIBC_2.17", OTHER),
            ("0x000000000496b368", OTHER),
        ] {
            assert_eq!(crate_of(function), expected, "{function}");
        }
    }

    #[test]
    fn the_table_is_read_with_or_without_percentages_and_files() {
        let table = "\
--------------------------------------------------------------------------------
Ir
--------------------------------------------------------------------------------
12,345,678 (100.0%)  PROGRAM TOTALS

--------------------------------------------------------------------------------
Ir                  file:function
--------------------------------------------------------------------------------
1,500 (12.1%)  /home/u/.cargo/registry/src/x/tracing-subscriber-0.3.23/src/registry/sharded.rs:tracing_subscriber::registry::sharded::Registry::get [/bin/order-service]
  700  ???:malloc [/usr/lib/x86_64-linux-gnu/libc.so.6]
   20  ./string/../sysdeps/x86_64/multiarch/memmove-vec-unaligned-erms.S:__memcpy_avx_unaligned_erms [/usr/lib/x86_64-linux-gnu/libc.so.6]
";
        let read: Vec<(&str, u64)> = functions(table).collect();
        assert_eq!(
            read,
            vec![
                (
                    "tracing_subscriber::registry::sharded::Registry::get",
                    1_500
                ),
                ("malloc", 700),
                ("__memcpy_avx_unaligned_erms", 20),
            ]
        );
    }
}
