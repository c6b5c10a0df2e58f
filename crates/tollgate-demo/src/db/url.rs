//! Which database the service runs on: `sqlite:PATH` (or a bare path) or
//! `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use tollgate_postgres::tokio_postgres::Config;

/// The service's database.
#[derive(Clone)]
pub enum Database {
    /// An SQLite file, created on first run.
    Sqlite(PathBuf),
    /// A PostgreSQL database shared by every instance.
    Postgres(Box<Config>),
}

/// A `--database` value that is not a database URL.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DatabaseUrlError(String);

impl FromStr for Database {
    type Err = DatabaseUrlError;

    fn from_str(url: &str) -> Result<Database, DatabaseUrlError> {
        if let Some(path) = url.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(DatabaseUrlError("sqlite: needs a file path".into()));
            }
            return Ok(Database::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let config: Config = url
                .parse()
                .map_err(|e| DatabaseUrlError(format!("not a PostgreSQL URL: {e}")))?;
            if config.get_hosts().is_empty() {
                return Err(DatabaseUrlError(
                    "the PostgreSQL URL names no host (postgres://USER@HOST:PORT/DB)".into(),
                ));
            }
            return Ok(Database::Postgres(Box::new(config)));
        }
        Err(DatabaseUrlError(
            "expected sqlite:PATH or postgres://USER@HOST:PORT/DB".into(),
        ))
    }
}

impl From<PathBuf> for Database {
    fn from(path: PathBuf) -> Database {
        Database::Sqlite(path)
    }
}

impl From<&std::path::Path> for Database {
    fn from(path: &std::path::Path) -> Database {
        Database::Sqlite(path.to_path_buf())
    }
}

/// The URL, with any password left out.
impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            Database::Postgres(config) => {
                f.write_str("postgres://")?;
                if let Some(user) = config.get_user() {
                    write!(f, "{user}@")?;
                }
                for (i, host) in config.get_hosts().iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    match host {
                        tollgate_postgres::tokio_postgres::config::Host::Tcp(name) => {
                            f.write_str(name)?;
                        }
                        #[cfg(unix)]
                        tollgate_postgres::tokio_postgres::config::Host::Unix(path) => {
                            write!(f, "{}", path.display())?;
                        }
                    }
                    if let Some(port) = config.get_ports().get(i) {
                        write!(f, ":{port}")?;
                    }
                }
                write!(f, "/{}", config.get_dbname().unwrap_or(""))
            }
        }
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Database({self})")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_parsed_and_shown_without_their_password() {
        let db: Database = "postgres://app:secret@127.0.0.1:5999/svc".parse().unwrap();
        assert_eq!(db.to_string(), "postgres://app@127.0.0.1:5999/svc");
        let db: Database = "sqlite:/tmp/x.db".parse().unwrap();
        assert_eq!(db.to_string(), "sqlite:/tmp/x.db");
        let db: Database = "sqlite:///tmp/x.db".parse().unwrap();
        assert_eq!(db.to_string(), "sqlite:/tmp/x.db");
    }

    #[test]
    fn malformed_urls_are_refused_with_the_reason() {
        let refused = |url: &str| url.parse::<Database>().unwrap_err().to_string();
        assert_eq!(
            refused("mysql://x@y/z"),
            "expected sqlite:PATH or postgres://USER@HOST:PORT/DB"
        );
        assert_eq!(refused("sqlite:"), "sqlite: needs a file path");
        assert!(refused("postgres://u@h:notaport/db").starts_with("not a PostgreSQL URL: "));
        assert_eq!(
            refused("postgres:///db"),
            "the PostgreSQL URL names no host (postgres://USER@HOST:PORT/DB)"
        );
    }
}
