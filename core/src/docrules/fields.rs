//! Typed reads of one automerge map, shared by the two document types and their schema checks.

use super::{Checked, Rule, RuleBreak};
use automerge::{AutoCommit, ObjId, ObjType, ReadDoc, ScalarValue, ValueRef};

/// The fields of one map read in a single pass. Automerge's `get` seeks per key, which made
/// reading a 25-answer inspection ~10× slower than iterating each map once.
pub(crate) struct Fields(pub Vec<(String, Field)>);

pub(crate) enum Field {
    Scalar(ScalarValue),
    Object(ObjType, ObjId),
}

impl Field {
    pub(crate) fn as_uint(&self) -> Option<u64> {
        match self {
            Field::Scalar(ScalarValue::Uint(n)) => Some(*n),
            Field::Scalar(ScalarValue::Int(n)) => u64::try_from(*n).ok(),
            _ => None,
        }
    }

    /// The type's name as the documents' pages write it, for error messages.
    fn type_name(&self) -> &'static str {
        match self {
            Field::Object(ObjType::Map, _) | Field::Object(ObjType::Table, _) => "map",
            Field::Object(ObjType::List, _) => "list",
            Field::Object(ObjType::Text, _) => "text",
            Field::Scalar(s) => match s {
                ScalarValue::Str(_) => "str",
                ScalarValue::Int(_) => "int",
                ScalarValue::Uint(_) => "uint",
                ScalarValue::F64(_) => "f64",
                ScalarValue::Counter(_) => "counter",
                ScalarValue::Timestamp(_) => "timestamp",
                ScalarValue::Boolean(_) => "boolean",
                ScalarValue::Bytes(_) => "bytes",
                ScalarValue::Null => "null",
                ScalarValue::Unknown { .. } => "an unknown type",
            },
        }
    }
}

impl Fields {
    pub(crate) fn of(doc: &AutoCommit, obj: &ObjId) -> Fields {
        Fields(
            doc.map_range(obj, ..)
                .map(|item| {
                    let field = match &item.value {
                        ValueRef::Object(t) => Field::Object(*t, item.id()),
                        ValueRef::Scalar(s) => Field::Scalar(ScalarValue::from(s)),
                    };
                    (item.key.into_owned(), field)
                })
                .collect(),
        )
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Field> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, f)| f)
    }

    fn scalar(&self, key: &str) -> Option<&ScalarValue> {
        match self.get(key)? {
            Field::Scalar(s) => Some(s),
            Field::Object(..) => None,
        }
    }

    pub(crate) fn obj(&self, key: &str) -> Option<ObjId> {
        match self.get(key)? {
            Field::Object(_, id) => Some(id.clone()),
            Field::Scalar(_) => None,
        }
    }

    pub(crate) fn str(&self, key: &str) -> Option<String> {
        match self.scalar(key)? {
            ScalarValue::Str(s) => Some(s.to_string()),
            _ => None,
        }
    }

    pub(crate) fn uint(&self, key: &str) -> Option<u64> {
        self.get(key)?.as_uint()
    }

    pub(crate) fn f64(&self, key: &str) -> Option<f64> {
        match self.scalar(key)? {
            ScalarValue::F64(x) if x.is_finite() => Some(*x),
            ScalarValue::Int(n) => Some(*n as f64),
            ScalarValue::Uint(n) => Some(*n as f64),
            _ => None,
        }
    }

    pub(crate) fn time(&self, key: &str) -> Option<i64> {
        match self.scalar(key)? {
            ScalarValue::Timestamp(t) | ScalarValue::Int(t) => Some(*t),
            _ => None,
        }
    }

    pub(crate) fn bool(&self, key: &str) -> Option<bool> {
        match self.scalar(key)? {
            ScalarValue::Boolean(b) => Some(*b),
            _ => None,
        }
    }
}

/// The longest text a document field holds (a note, a comment, a reason: ~2,700 Chinese
/// characters), so one field cannot carry megabytes into every bulletin and screen.
pub const MAX_TEXT_BYTES: usize = 8192;

/// One map checked against its documented layout; every refusal names `path.key`.
pub(crate) struct Shape {
    path: String,
    pub fields: Fields,
}

impl Shape {
    pub(crate) fn of(doc: &AutoCommit, obj: &ObjId, path: impl Into<String>) -> Shape {
        Shape {
            path: path.into(),
            fields: Fields::of(doc, obj),
        }
    }

    pub(crate) fn path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn wrong(&self, key: &str, expected: &str) -> RuleBreak {
        let found = self
            .fields
            .get(key)
            .map(Field::type_name)
            .unwrap_or("nothing");
        RuleBreak::new(
            Rule::Schema,
            format!("{} must be {expected}, found {found}", self.path(key)),
        )
    }

    pub(crate) fn invalid(&self, key: &str, why: impl std::fmt::Display) -> RuleBreak {
        RuleBreak::new(Rule::Schema, format!("{}: {why}", self.path(key)))
    }

    /// Refuses keys the layout does not have.
    pub(crate) fn only(&self, allowed: &[&str]) -> Checked {
        match self
            .fields
            .0
            .iter()
            .find(|(k, _)| !allowed.contains(&k.as_str()))
        {
            Some((k, _)) => Err(RuleBreak::new(
                Rule::Schema,
                format!("{} is not part of the layout", self.path(k)),
            )),
            None => Ok(()),
        }
    }

    /// `Ok(None)` when absent; a present value of another type is refused.
    fn typed<T>(
        &self,
        key: &str,
        expected: &str,
        read: impl Fn(&Fields) -> Option<T>,
    ) -> Checked<Option<T>> {
        match self.fields.get(key) {
            None => Ok(None),
            Some(_) => read(&self.fields)
                .map(Some)
                .ok_or_else(|| self.wrong(key, expected)),
        }
    }

    fn required<T>(&self, key: &str, expected: &str, v: Option<T>) -> Checked<T> {
        v.ok_or_else(|| self.wrong(key, expected))
    }

    pub(crate) fn str(&self, key: &str) -> Checked<Option<String>> {
        let v = self.typed(key, "a str", |f| f.str(key))?;
        if v.as_ref().is_some_and(|t| t.len() > MAX_TEXT_BYTES) {
            return Err(self.invalid(key, format!("longer than {MAX_TEXT_BYTES} bytes")));
        }
        Ok(v)
    }

    pub(crate) fn req_str(&self, key: &str) -> Checked<String> {
        let v = self.str(key)?;
        self.required(key, "a str", v)
    }

    /// A required str with something in it besides spaces.
    pub(crate) fn non_blank(&self, key: &str) -> Checked<String> {
        let v = self.req_str(key)?;
        if v.trim().is_empty() {
            return Err(self.invalid(key, "must not be empty"));
        }
        Ok(v)
    }

    pub(crate) fn uint(&self, key: &str) -> Checked<Option<u64>> {
        self.typed(key, "a uint", |f| f.uint(key))
    }

    pub(crate) fn f64(&self, key: &str) -> Checked<Option<f64>> {
        self.typed(key, "a finite f64", |f| f.f64(key))
    }

    pub(crate) fn req_f64(&self, key: &str) -> Checked<f64> {
        let v = self.f64(key)?;
        self.required(key, "a finite f64", v)
    }

    pub(crate) fn time(&self, key: &str) -> Checked<Option<i64>> {
        self.typed(key, "a timestamp", |f| f.time(key))
    }

    pub(crate) fn req_time(&self, key: &str) -> Checked<i64> {
        let v = self.time(key)?;
        self.required(key, "a timestamp", v)
    }

    pub(crate) fn bool(&self, key: &str) -> Checked<Option<bool>> {
        self.typed(key, "a boolean", |f| f.bool(key))
    }

    pub(crate) fn req_bool(&self, key: &str) -> Checked<bool> {
        let v = self.bool(key)?;
        self.required(key, "a boolean", v)
    }

    /// A required object of the given type.
    pub(crate) fn obj(&self, key: &str, kind: ObjType) -> Checked<ObjId> {
        match self.fields.get(key) {
            Some(Field::Object(t, id)) if *t == kind => Ok(id.clone()),
            _ => Err(self.wrong(
                key,
                match kind {
                    ObjType::List => "a list",
                    ObjType::Text => "a text",
                    _ => "a map",
                },
            )),
        }
    }

    /// An optional hash: 64 lower-case hex digits.
    pub(crate) fn sha256(&self, key: &str) -> Checked<Option<String>> {
        match self.str(key)? {
            Some(h) if !is_sha256(&h) => {
                Err(self.invalid(key, "must be 64 lower-case hex digits (SHA-256)"))
            }
            other => Ok(other),
        }
    }
}

impl Shape {
    /// The root of a document: only the layout's `keys`, a `schema` this build reads, the
    /// document `type` and its own `id`.
    pub(crate) fn document_root(
        doc: &AutoCommit,
        keys: &[&str],
        doc_type: &str,
        max_schema: u64,
        id: &str,
    ) -> Checked<Shape> {
        let root = Shape::of(doc, &automerge::ROOT, "");
        root.only(keys)?;
        match root.uint("schema")? {
            Some(v) if v <= max_schema => {}
            Some(v) => {
                return Err(root.invalid(
                    "schema",
                    format!("layout {v} is newer than this build reads"),
                ));
            }
            None => return Err(root.invalid("schema", "missing")),
        }
        if root.req_str("type")? != doc_type {
            return Err(root.invalid("type", format!("must be {doc_type:?}")));
        }
        if root.req_str("id")? != id {
            return Err(root.invalid("id", "does not match the document id"));
        }
        Ok(root)
    }
}

/// A SHA-256 as documents and the media protocol write it: 64 lower-case hex digits.
pub(crate) fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
