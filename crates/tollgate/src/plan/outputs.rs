//! What a node returns: named field values, checked against its declared outputs.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The field values one node returns. Field names are usually `&'static str` (no allocation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outputs<V> {
    fields: Vec<(Cow<'static, str>, V)>,
}

impl<V> Default for Outputs<V> {
    fn default() -> Self {
        Outputs { fields: Vec::new() }
    }
}

impl<V> Outputs<V> {
    /// No fields.
    pub fn new() -> Self {
        Outputs::default()
    }

    /// One field.
    pub fn one(field: impl Into<Cow<'static, str>>, value: V) -> Self {
        Outputs {
            fields: vec![(field.into(), value)],
        }
    }

    /// Adds a field (replacing an earlier value of the same field).
    pub fn with(mut self, field: impl Into<Cow<'static, str>>, value: V) -> Self {
        self.insert(field, value);
        self
    }

    /// Sets a field (replacing an earlier value of the same field).
    pub fn insert(&mut self, field: impl Into<Cow<'static, str>>, value: V) {
        let field = field.into();
        match self.fields.iter_mut().find(|(f, _)| *f == field) {
            Some((_, old)) => *old = value,
            None => self.fields.push((field, value)),
        }
    }

    /// The value of `field`.
    pub fn get(&self, field: &str) -> Option<&V> {
        self.fields.iter().find(|(f, _)| f == field).map(|(_, v)| v)
    }

    /// How many fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The fields, in the order they were set.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        self.fields.iter().map(|(f, v)| (&**f, v))
    }

    /// The first field that is not among `declared`, if any.
    pub(crate) fn undeclared(&self, declared: &[Arc<str>]) -> Option<&str> {
        self.fields
            .iter()
            .map(|(field, _)| &**field)
            .find(|field| !declared.iter().any(|d| **d == **field))
    }

    /// Moves the fields into `merged`, keyed by their declared names (fields not among
    /// `declared` are left out: check [`undeclared`](Self::undeclared) first).
    pub(crate) fn merge_into(self, declared: &[Arc<str>], merged: &mut BTreeMap<Arc<str>, V>) {
        for (field, value) in self.fields {
            if let Some(name) = declared.iter().find(|d| ***d == *field) {
                merged.insert(name.clone(), value);
            }
        }
    }
}

impl<K: Into<Cow<'static, str>>, V> FromIterator<(K, V)> for Outputs<V> {
    fn from_iter<T: IntoIterator<Item = (K, V)>>(iter: T) -> Self {
        let mut outputs = Outputs::new();
        for (field, value) in iter {
            outputs.insert(field, value);
        }
        outputs
    }
}
