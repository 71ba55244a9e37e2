//! Pipeline names become path components under `SLING_STATE_PATH` (and labels in every output), so a name must be
//! one safe component. A hostile name such as `..` (from a file named `...yaml`) would otherwise point the backfill
//! reset at the parent of the state directory.

use thiserror::Error;

/// Longest name accepted: Linux's limit for one path component (`NAME_MAX`), in bytes.
pub const MAX_NAME_BYTES: usize = 255;

/// Which rule a name breaks; the message says what is expected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    #[error("the pipeline name is empty")]
    Empty,
    #[error("the pipeline name `{0}` is a relative directory (`.` or `..`), not a name")]
    Dots(String),
    #[error("the pipeline name contains `/`, which would make it a path; expected a single name")]
    Slash,
    #[error("the pipeline name contains a NUL byte")]
    Nul,
    #[error("the pipeline name contains a control character (U+{0:04X}); expected printable characters only")]
    Control(u32),
    #[error(
        "the pipeline name is {0} bytes long; at most {MAX_NAME_BYTES} fit in one path component"
    )]
    TooLong(usize),
    #[error("the pipeline name is not valid UTF-8")]
    NotUtf8,
}

/// Accepts `name` when it can serve as one directory name inside the state directory and prints as one line.
pub fn validate(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name == "." || name == ".." {
        return Err(NameError::Dots(name.to_owned()));
    }
    if name.contains('/') {
        return Err(NameError::Slash);
    }
    if name.contains('\0') {
        return Err(NameError::Nul);
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(NameError::Control(u32::from(c)));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(NameError::TooLong(name.len()));
    }
    Ok(())
}

/// The pipeline name a file gives (its stem), validated.
pub fn from_path(path: &std::path::Path) -> Result<String, NameError> {
    let stem = path.file_stem().ok_or(NameError::Empty)?;
    let name = stem.to_str().ok_or(NameError::NotUtf8)?;
    validate(name)?;
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn ordinary_names_pass() {
        for n in [
            "orders",
            "mission-01_orders",
            "a.b.c",
            "history.jsonl",
            ".hidden",
            "ünïcode",
        ] {
            assert_eq!(validate(n), Ok(()), "{n}");
        }
    }

    #[test]
    fn each_rule_is_named() {
        assert_eq!(validate(""), Err(NameError::Empty));
        assert_eq!(validate("."), Err(NameError::Dots(".".into())));
        assert_eq!(validate(".."), Err(NameError::Dots("..".into())));
        assert_eq!(validate("a/b"), Err(NameError::Slash));
        assert_eq!(validate("a\0b"), Err(NameError::Nul));
        assert_eq!(validate("a\nb"), Err(NameError::Control(0x0a)));
        assert_eq!(validate("a\x1b[31m"), Err(NameError::Control(0x1b)));
        assert_eq!(validate("a\u{85}"), Err(NameError::Control(0x85)));
        assert_eq!(validate(&"x".repeat(256)), Err(NameError::TooLong(256)));
        assert!(NameError::Control(0x1b).to_string().contains("U+001B"));
    }

    #[test]
    fn file_stems_of_hostile_files_are_refused() {
        assert_eq!(
            from_path(Path::new("/p/...yaml")),
            Err(NameError::Dots("..".into()))
        );
        assert_eq!(
            from_path(Path::new("/p/..yaml")),
            Err(NameError::Dots(".".into()))
        );
        assert_eq!(from_path(Path::new("/p/orders.yaml")), Ok("orders".into()));
        use std::os::unix::ffi::OsStrExt;
        let bad = std::ffi::OsStr::from_bytes(b"/p/a\xffb.yaml");
        assert_eq!(from_path(Path::new(bad)), Err(NameError::NotUtf8));
    }
}
