//! Finding the server programs: `PATH`, then `/usr/lib/postgresql/*/bin` (highest version first).

use std::env;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::ServerError;

/// What installs the PostgreSQL server programs (`initdb`, `postgres`).
pub(crate) const INSTALL_POSTGRES: &str = "apt-get install postgresql";
/// What installs `psql`.
pub(crate) const INSTALL_PSQL: &str = "apt-get install postgresql-client";
/// What installs `redis-server`.
pub(crate) const INSTALL_REDIS: &str = "apt-get install redis-server";

const PG_LIB: &str = "/usr/lib/postgresql";

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn in_path(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// `/usr/lib/postgresql/<version>/bin`, highest version first (`16` before `15` before `9.6`).
fn postgres_bin_dirs() -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(PG_LIB) else {
        return Vec::new();
    };
    let mut versions: Vec<(Vec<u32>, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let version = name
                .split('.')
                .map(str::parse)
                .collect::<Result<Vec<u32>, _>>()
                .ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versions.sort_by(|a, b| b.0.cmp(&a.0));
    versions.into_iter().map(|(_, dir)| dir).collect()
}

/// A PostgreSQL program: in `dir` when given, else in `PATH`, else in the newest
/// `/usr/lib/postgresql/*/bin`.
pub(crate) fn postgres_tool(
    name: &str,
    dir: Option<&Path>,
    install: &'static str,
) -> Result<PathBuf, ServerError> {
    if let Some(dir) = dir {
        let candidate = dir.join(name);
        return if is_executable(&candidate) {
            Ok(candidate)
        } else {
            Err(ServerError::MissingBinary {
                binary: name.to_owned(),
                searched: dir.display().to_string(),
                install,
            })
        };
    }
    in_path(name)
        .or_else(|| {
            postgres_bin_dirs()
                .into_iter()
                .map(|dir| dir.join(name))
                .find(|candidate| is_executable(candidate))
        })
        .ok_or_else(|| ServerError::MissingBinary {
            binary: name.to_owned(),
            searched: format!("PATH and {PG_LIB}/*/bin"),
            install,
        })
}

/// `redis-server`: the explicit path or name when given (a bare name is looked up in `PATH`),
/// else `redis-server` in `PATH`.
pub(crate) fn redis_server(explicit: Option<&Path>) -> Result<PathBuf, ServerError> {
    let wanted = explicit.unwrap_or(Path::new("redis-server"));
    let found = if wanted.components().count() > 1 {
        is_executable(wanted).then(|| wanted.to_path_buf())
    } else {
        wanted.to_str().and_then(in_path)
    };
    found.ok_or_else(|| ServerError::MissingBinary {
        binary: wanted.display().to_string(),
        searched: if wanted.components().count() > 1 {
            "that path".to_owned()
        } else {
            "PATH".to_owned()
        },
        install: INSTALL_REDIS,
    })
}
