//! Human sizes (`512M`, `2G`, `1.5G`) as users type them for memory, swap,
//! disk and I/O rates. Binary units (K = 1024), like the tools users know.

/// A size that could not be read; the message names the input and an example.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{what} {input:?} is not a size (try 512M; units K, M, G, T)")]
pub struct SizeError {
    /// What the size was for (`memory limit`, `disk size`).
    pub what: String,
    /// The refused input.
    pub input: String,
}

/// Parses `input` as bytes. `what` names the setting for the error message.
/// A plain number is bytes; `K`/`M`/`G`/`T` (optionally followed by `B` or
/// `iB`, any case) multiply by powers of 1024. Zero and negative sizes are refused.
pub fn parse_size(what: &str, input: &str) -> Result<u64, SizeError> {
    let err = || SizeError {
        what: what.to_string(),
        input: input.to_string(),
    };
    let s = input.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
        return Err(err());
    }
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return Err(err()),
    };
    let value: f64 = num.parse().map_err(|_| err())?;
    let bytes = value * (1u64 << shift) as f64;
    if !(bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(err());
    }
    Ok(bytes.round() as u64)
}

/// Formats bytes the way `parse_size` reads them (`512M`, `1.5G`), for lists and status.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes}B")
    } else if v >= 100.0 || (v - v.round()).abs() < 0.05 {
        format!("{:.0}{}", v, UNITS[i])
    } else {
        format!("{:.1}{}", v, UNITS[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_units() {
        assert_eq!(parse_size("m", "512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("m", "2g").unwrap(), 2 << 30);
        assert_eq!(parse_size("m", "1.5G").unwrap(), 3 << 29);
        assert_eq!(parse_size("m", "4096").unwrap(), 4096);
        assert_eq!(parse_size("m", "64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("m", "1T").unwrap(), 1 << 40);
    }

    #[test]
    fn refuses_nonsense_with_an_example() {
        for bad in [
            "12Q", "", "-1M", "0", "0M", "M", ".5G", "1..2G", "abc", "1e9",
        ] {
            let e = parse_size("memory limit", bad).unwrap_err();
            assert!(e.to_string().contains("try 512M"), "{bad}: {e}");
        }
    }

    #[test]
    fn formats_round_trip() {
        for s in ["512M", "2G", "1.5G", "100K"] {
            let b = parse_size("x", s).unwrap();
            assert_eq!(format_size(b), s);
        }
    }
}
