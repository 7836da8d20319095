//! Reading inputs and writing outputs for the commands.

use std::io::Read;
use std::path::Path;

use anyhow::{Context as _, bail};

/// Inputs larger than this are refused before parsing.
const MAX_INPUT_BYTES: u64 = 4 * 1024 * 1024;

pub(crate) use podiam_process::exit_on;

/// Reads a file, or standard input for `-`, refusing oversized input.
pub(crate) fn read_input(path: &Path) -> anyhow::Result<String> {
    let mut text = String::new();
    if path == Path::new("-") {
        std::io::stdin()
            .take(MAX_INPUT_BYTES + 1)
            .read_to_string(&mut text)
            .context("cannot read standard input")?;
    } else {
        std::fs::File::open(path)
            .with_context(|| format!("cannot open {}", path.display()))?
            .take(MAX_INPUT_BYTES + 1)
            .read_to_string(&mut text)
            .with_context(|| format!("cannot read {} as UTF-8 text", path.display()))?;
    }
    if text.len() as u64 > MAX_INPUT_BYTES {
        bail!("{} is larger than {MAX_INPUT_BYTES} bytes", path.display());
    }
    Ok(text)
}

/// Writes `contents` to a new file readable only by its owner (mode 0600). An existing file is
/// replaced only with `force`.
pub(crate) fn write_private(path: &Path, contents: &[u8], force: bool) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    if force && path.exists() {
        std::fs::remove_file(path).with_context(|| format!("cannot replace {}", path.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| {
            if path.exists() {
                format!("{} exists; pass --force to replace it", path.display())
            } else {
                format!("cannot create {}", path.display())
            }
        })?;
    file.write_all(contents)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.sync_all()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Parses a time given as seconds since the epoch or RFC 3339.
pub(crate) fn parse_time(text: &str) -> Result<time::OffsetDateTime, String> {
    if let Ok(seconds) = text.parse::<i64>() {
        return time::OffsetDateTime::from_unix_timestamp(seconds).map_err(|e| e.to_string());
    }
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| format!("{text:?} is neither seconds since the epoch nor an RFC 3339 time"))
}
