//! Why a file was not fully read, typed: what failed (stat, open, read, the tag parse)
//! and, for the file system's part, the kind of error it gave. Engines compare records on
//! these kinds, never on the text of an error; the text is only what the `error` column
//! shows (`open: Permission denied (os error 13)`, several joined with `; `).

use std::fmt;
use std::io;

use rusqlite::types::{ToSql, ToSqlOutput};

/// What went wrong with one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    Stat(io::ErrorKind),
    Open(io::ErrorKind),
    Read(io::ErrorKind),
    /// The tags or audio properties could not be read (a malformed file, or a parse
    /// that hit its budget).
    Tags,
}

#[derive(Clone, Debug)]
pub struct Problem {
    pub kind: ProblemKind,
    /// What the OS or the parser said.
    pub message: String,
}

impl Problem {
    pub fn stat(e: &io::Error) -> Problem {
        Problem::io(ProblemKind::Stat(e.kind()), e)
    }

    pub fn open(e: &io::Error) -> Problem {
        Problem::io(ProblemKind::Open(e.kind()), e)
    }

    pub fn read(e: &io::Error) -> Problem {
        Problem::io(ProblemKind::Read(e.kind()), e)
    }

    pub fn tags(message: String) -> Problem {
        Problem {
            kind: ProblemKind::Tags,
            message,
        }
    }

    fn io(kind: ProblemKind, e: &io::Error) -> Problem {
        Problem {
            kind,
            message: e.to_string(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stage = match self.kind {
            ProblemKind::Stat(_) => "stat: ",
            ProblemKind::Open(_) => "open: ",
            ProblemKind::Read(_) => "read: ",
            ProblemKind::Tags => "",
        };
        write!(f, "{stage}{}", self.message)
    }
}

/// The problems of one file, in the order they were met; never empty.
#[derive(Clone, Debug)]
pub struct Problems(Vec<Problem>);

impl Problems {
    /// `None` when there is nothing to say.
    pub fn from_vec(problems: Vec<Problem>) -> Option<Problems> {
        (!problems.is_empty()).then_some(Problems(problems))
    }

    pub fn kinds(&self) -> impl Iterator<Item = ProblemKind> + '_ {
        self.0.iter().map(|p| p.kind)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Problem> {
        self.0.iter()
    }
}

impl From<Problem> for Problems {
    fn from(p: Problem) -> Problems {
        Problems(vec![p])
    }
}

/// Equal when the same things failed the same way, whatever the messages say.
impl PartialEq for Problems {
    fn eq(&self, other: &Problems) -> bool {
        self.kinds().eq(other.kinds())
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// Stored as its text in the `error` column.
impl ToSql for Problems {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_the_column_and_equality_is_the_kind() {
        let gone = io::Error::from_raw_os_error(libc::ENOENT);
        let p = Problems::from_vec(vec![Problem::read(&gone), Problem::tags("No tags".into())])
            .unwrap();
        assert_eq!(
            p.to_string(),
            "read: No such file or directory (os error 2); No tags"
        );
        let worded = Problems::from_vec(vec![
            Problem::read(&io::Error::new(io::ErrorKind::NotFound, "vanished")),
            Problem::tags("other words".into()),
        ])
        .unwrap();
        assert_eq!(p, worded);
        let denied = io::Error::from_raw_os_error(libc::EACCES);
        let other = Problems::from_vec(vec![Problem::read(&denied), Problem::tags("x".into())]);
        assert_ne!(Some(p), other);
        assert!(Problems::from_vec(Vec::new()).is_none());
    }
}
