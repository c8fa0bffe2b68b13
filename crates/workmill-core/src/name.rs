//! `TaskName`: the name a task's handler is registered under, cheap to clone.

use std::borrow::{Borrow, Cow};
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The registered name of a task's handler, as queued tasks and records carry it.
///
/// [`TaskName::from_static`] keeps a string literal (such as
/// [`NamedTask::NAME`](crate::NamedTask::NAME)) as that `&'static str`, with no
/// allocation at all, and so does a borrowed `Cow<'static, str>`; any other
/// name (`From<&str>`, `From<String>`, `From<Box<str>>`) is copied once behind
/// an [`Arc`], and an `Arc<str>` is kept as it is. Either way cloning one,
/// which a backend does for every task it hands out, never allocates, and a
/// `TaskName` is 24 bytes, the size of a `String`. It dereferences to `str` and
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
    /// A name that borrows a string literal: no allocation, now or when cloned.
    ///
    /// Being `const`, it can name a task in a `const` or `static` item.
    ///
    /// # Examples
    ///
    /// ```
    /// use workmill_core::{NewTask, TaskName};
    ///
    /// const RESIZE: TaskName = TaskName::from_static("image.resize");
    /// let task = NewTask::new(RESIZE, vec![1, 2]);
    /// assert_eq!(task.name, "image.resize");
    /// ```
    pub const fn from_static(name: &'static str) -> TaskName {
        TaskName(Repr::Static(name))
    }

    /// Whether the name borrows a `&'static str` ([`TaskName::from_static`]) rather than
    /// sharing an `Arc`: cloning and dropping it then touches no shared count.
    ///
    /// # Examples
    ///
    /// ```
    /// use workmill_core::TaskName;
    ///
    /// assert!(TaskName::from_static("email.send").is_static());
    /// assert!(!TaskName::from(String::from("email.send")).is_static());
    /// ```
    pub fn is_static(&self) -> bool {
        matches!(self.0, Repr::Static(_))
    }

    /// The name's text.
    ///
    /// # Examples
    ///
    /// ```
    /// use workmill_core::TaskName;
    ///
    /// let name = TaskName::from(String::from("email.send"));
    /// let (area, verb) = name.as_str().split_once('.').unwrap();
    /// assert_eq!((area, verb), ("email", "send"));
    /// ```
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

impl From<Box<str>> for TaskName {
    fn from(name: Box<str>) -> TaskName {
        TaskName(Repr::Shared(Arc::from(name)))
    }
}

impl From<Cow<'static, str>> for TaskName {
    /// Borrows a borrowed name, as [`TaskName::from_static`] does; copies an owned one
    /// behind an `Arc`.
    fn from(name: Cow<'static, str>) -> TaskName {
        match name {
            Cow::Borrowed(name) => TaskName::from_static(name),
            Cow::Owned(name) => TaskName::from(name),
        }
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
        deserializer.deserialize_str(TaskNameVisitor)
    }
}

/// Copies the text straight into the name's `Arc`, with no `String` in between. It takes
/// what serde's `String` takes: a string, or bytes that are UTF-8. An owned or borrowed
/// string reaches `visit_str` through serde's default `visit_string` and
/// `visit_borrowed_str`, which is right here: an `Arc<str>` is a new allocation either way.
struct TaskNameVisitor;

impl Visitor<'_> for TaskNameVisitor {
    type Value = TaskName;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<TaskName, E> {
        Ok(TaskName::from(name))
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<TaskName, E> {
        match std::str::from_utf8(bytes) {
            Ok(name) => Ok(TaskName::from(name)),
            Err(_) => Err(E::invalid_value(de::Unexpected::Bytes(bytes), &self)),
        }
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
    fn is_as_large_as_a_string() {
        assert_eq!(
            std::mem::size_of::<TaskName>(),
            std::mem::size_of::<String>()
        );
        #[cfg(target_pointer_width = "64")]
        assert_eq!(std::mem::size_of::<TaskName>(), 24);
    }

    #[test]
    fn a_borrowed_cow_stays_borrowed_and_owned_text_is_shared() {
        static LITERAL: &str = "report.weekly";
        let borrowed = TaskName::from(Cow::Borrowed(LITERAL));
        assert!(std::ptr::eq(borrowed.as_str(), LITERAL));
        let owned = TaskName::from(Cow::<'static, str>::Owned(String::from(LITERAL)));
        assert!(!std::ptr::eq(owned.as_str(), LITERAL));
        assert_eq!(owned, borrowed);
        let boxed = TaskName::from(Box::<str>::from(LITERAL));
        assert_eq!(boxed, LITERAL);
        assert!(std::ptr::eq(boxed.as_str(), boxed.clone().as_str()));
    }

    /// Deserializes with `deserializer` as a `TaskName` and as a `String`, for
    /// comparing the two: the name accepts exactly what a `String` accepts.
    fn as_name_and_as_string<'de, D>(
        deserializer: D,
    ) -> (Result<String, String>, Result<String, String>)
    where
        D: Deserializer<'de, Error = serde::de::value::Error> + Clone,
    {
        let name = TaskName::deserialize(deserializer.clone())
            .map(String::from)
            .map_err(|e| e.to_string());
        let string = String::deserialize(deserializer).map_err(|e| e.to_string());
        (name, string)
    }

    #[test]
    fn deserializes_what_a_string_deserializes() {
        use serde::de::IntoDeserializer;
        use serde::de::value::{
            BorrowedBytesDeserializer, BorrowedStrDeserializer, BytesDeserializer, Error,
            StrDeserializer, StringDeserializer, U32Deserializer,
        };
        let text = "email.send";
        let accepted = [
            as_name_and_as_string(StrDeserializer::<Error>::new(text)),
            as_name_and_as_string(BorrowedStrDeserializer::<Error>::new(text)),
            as_name_and_as_string(StringDeserializer::<Error>::new(text.to_owned())),
            as_name_and_as_string(BytesDeserializer::<Error>::new(text.as_bytes())),
            as_name_and_as_string(BorrowedBytesDeserializer::<Error>::new(text.as_bytes())),
        ];
        for (name, string) in accepted {
            assert_eq!(name.as_deref(), Ok(text));
            assert_eq!(name, string);
        }
        let refused = [
            as_name_and_as_string(BytesDeserializer::<Error>::new(&[0xff, 0xfe])),
            as_name_and_as_string(U32Deserializer::<Error>::new(7)),
            as_name_and_as_string(vec![b'a'].into_deserializer()),
        ];
        for (name, string) in refused {
            assert!(name.is_err(), "{name:?}");
            assert_eq!(name, string);
        }
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
