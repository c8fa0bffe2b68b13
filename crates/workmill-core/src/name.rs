//! `TaskName`: the name a task's handler is registered under, cheap to clone.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The registered name of a task's handler, as queued tasks and records carry it.
///
/// [`TaskName::from_static`] keeps a string literal (such as
/// [`NamedTask::NAME`](crate::NamedTask::NAME)) as that `&'static str`, with no
/// allocation at all; any other name (`From<&str>`, `From<String>`) is copied
/// once behind an [`Arc`]. Either way cloning one, which a backend does for
/// every task it hands out, never allocates. It dereferences to `str` and
/// compares, hashes and orders as its text.
///
/// # Examples
///
/// ```
/// use workmill_core::TaskName;
///
/// let literal = TaskName::from_static("email.send");
/// let built = TaskName::from(format!("email.{}", "send"));
/// assert_eq!(literal, built);
/// assert_eq!(TaskName::from("email.send"), built);
/// assert_eq!(literal, "email.send");
/// assert!(built.starts_with("email."));
/// ```
#[derive(Clone)]
pub struct TaskName(Repr);

#[derive(Clone)]
enum Repr {
    Static(&'static str),
    Shared(Arc<str>),
}

impl TaskName {
    /// A name that borrows a string literal.
    pub const fn from_static(name: &'static str) -> TaskName {
        TaskName(Repr::Static(name))
    }

    /// The name's text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Static(name) => name,
            Repr::Shared(name) => name,
        }
    }
}

impl Deref for TaskName {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for TaskName {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for TaskName {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for TaskName {
    /// Copies `name` behind an `Arc`; [`TaskName::from_static`] borrows a literal instead.
    fn from(name: &str) -> TaskName {
        TaskName(Repr::Shared(Arc::from(name)))
    }
}

impl From<String> for TaskName {
    fn from(name: String) -> TaskName {
        TaskName(Repr::Shared(Arc::from(name)))
    }
}

impl From<&String> for TaskName {
    fn from(name: &String) -> TaskName {
        TaskName(Repr::Shared(Arc::from(name.as_str())))
    }
}

impl From<Arc<str>> for TaskName {
    fn from(name: Arc<str>) -> TaskName {
        TaskName(Repr::Shared(name))
    }
}

impl From<TaskName> for String {
    fn from(name: TaskName) -> String {
        name.as_str().to_owned()
    }
}

impl PartialEq for TaskName {
    fn eq(&self, other: &TaskName) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for TaskName {}

impl PartialEq<str> for TaskName {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for TaskName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for TaskName {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<TaskName> for str {
    fn eq(&self, other: &TaskName) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<TaskName> for &str {
    fn eq(&self, other: &TaskName) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<TaskName> for String {
    fn eq(&self, other: &TaskName) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialOrd for TaskName {
    fn partial_cmp(&self, other: &TaskName) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TaskName {
    fn cmp(&self, other: &TaskName) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for TaskName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for TaskName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for TaskName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for TaskName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TaskName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<TaskName, D::Error> {
        String::deserialize(deserializer).map(TaskName::from)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::{Codec, Postcard};

    #[test]
    fn literal_and_built_names_are_the_same_name() {
        let literal = TaskName::from_static("report.daily");
        let built = TaskName::from(String::from("report.daily"));
        assert_eq!(literal, built);
        assert_eq!(literal.cmp(&built), Ordering::Equal);
        let mut by_name = HashMap::new();
        by_name.insert(literal, 1);
        assert_eq!(by_name.get(&built), Some(&1));
        assert_eq!(by_name.get("report.daily"), Some(&1));
        assert_ne!(TaskName::from("a"), TaskName::from("b"));
        let (a, b) = (
            TaskName::from_static("a"),
            TaskName::from(String::from("b")),
        );
        assert_eq!(a.cmp(&b), Ordering::Less);
    }

    #[test]
    fn clones_share_the_text() {
        let name = TaskName::from(String::from("resize"));
        let clone = name.clone();
        assert!(std::ptr::eq(name.as_str(), clone.as_str()));
    }

    #[test]
    fn encodes_as_a_string() {
        let name = TaskName::from("email.send");
        let bytes = Postcard.encode(&name).unwrap();
        assert_eq!(bytes, Postcard.encode(&"email.send").unwrap());
        assert_eq!(Postcard.decode::<TaskName>(&bytes).unwrap(), name);
        assert_eq!(name.to_string(), "email.send");
        assert_eq!(format!("{name:?}"), "\"email.send\"");
    }
}
