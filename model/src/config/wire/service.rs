//! `[hosts.NAME.service]` as written: one key per row of the settings table, each value read as
//! its row's kind, and the JSON Schema of the table built from the rows.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::json;

use super::At;
use crate::settings::{self, Kind, Setting};

/// KMS service settings (the Software Licensing Service on the host): one key per row of the
/// settings table, read, described in the schema and checked by the row. Each absent key is
/// left as the host has it.
#[derive(Debug)]
pub struct ServiceWire {
    /// The keys written, in file order.
    pub values: Vec<(&'static Setting, ServiceValueWire)>,
}

/// A setting's value as written, by the kind of its row.
#[derive(Debug)]
pub enum ServiceValueWire {
    Number(At<i64>),
    Bool(bool),
    List(At<Vec<At<PublishDomainWire>>>),
}

impl ServiceWire {
    /// The value written for `key`.
    pub fn get(&self, key: &str) -> Option<&ServiceValueWire> {
        self.values
            .iter()
            .find(|(r, _)| r.key == key)
            .map(|(_, v)| v)
    }
}

/// A key of `[service]`: a row of the table; another key is refused as `deny_unknown_fields`
/// refuses it, naming the keys there are.
struct ServiceKey(&'static Setting);

impl<'de> Deserialize<'de> for ServiceKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = ServiceKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("field identifier")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ServiceKey, E> {
                settings::find(v)
                    .map(ServiceKey)
                    .ok_or_else(|| E::unknown_field(v, settings::keys()))
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for ServiceWire {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ServiceWire;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("struct ServiceWire")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ServiceWire, A::Error> {
                let mut values: Vec<(&'static Setting, ServiceValueWire)> = Vec::new();
                while let Some(ServiceKey(row)) = map.next_key()? {
                    if values.iter().any(|(r, _)| r.key == row.key) {
                        return Err(de::Error::duplicate_field(row.key));
                    }
                    // the same types the struct's fields had, for the same messages
                    let value = match row.kind {
                        Kind::U16 | Kind::U32 => map
                            .next_value::<Option<At<i64>>>()?
                            .map(ServiceValueWire::Number),
                        Kind::Bool => map
                            .next_value::<Option<bool>>()?
                            .map(ServiceValueWire::Bool),
                        Kind::List => map
                            .next_value::<Option<At<Vec<At<PublishDomainWire>>>>>()?
                            .map(ServiceValueWire::List),
                    };
                    values.extend(value.map(|v| (row, v)));
                }
                Ok(ServiceWire { values })
            }
        }
        d.deserialize_map(V)
    }
}

/// The schema, from the rows as the table is read: each key's description, type and range.
impl JsonSchema for ServiceWire {
    fn schema_name() -> Cow<'static, str> {
        "ServiceWire".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut rows: Vec<&Setting> = settings::table().iter().collect();
        rows.sort_by_key(|r| r.key);
        let mut properties = serde_json::Map::new();
        for row in rows {
            let mut property = serde_json::Map::new();
            property.insert("description".into(), row.description.into());
            let (kind, rest) = match row.kind {
                Kind::U16 | Kind::U32 => ("integer", json!({ "format": "int64" })),
                Kind::Bool => ("boolean", json!({})),
                Kind::List => (
                    "array",
                    json!({ "items": generator.subschema_for::<PublishDomainWire>() }),
                ),
            };
            property.insert("type".into(), json!([kind, "null"]));
            if let serde_json::Value::Object(rest) = rest {
                property.extend(rest);
            }
            if let Some(range) = row.range {
                property.insert("maximum".into(), range.max.into());
                property.insert("minimum".into(), range.min.into());
            }
            properties.insert(row.key.into(), property.into());
        }
        schemars::json_schema!({
            "description": "KMS service settings (the Software Licensing Service on the host). Each absent key is left\nas the host has it.",
            "type": "object",
            "properties": properties,
            "additionalProperties": false,
        })
    }
}

/// One entry of the DNS publish list: a domain, or a table with its SRV priority and weight.
#[derive(Debug, Clone, JsonSchema)]
#[serde(untagged)]
pub enum PublishDomainWire {
    Domain(String),
    Detailed(PublishDomainDetail),
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishDomainDetail {
    pub domain: String,
    /// SRV priority, 0..=65535 (lower is preferred); default 0.
    #[serde(default)]
    #[schemars(range(min = 0, max = 65535))]
    pub priority: i64,
    /// SRV weight, 0..=65535; default 0.
    #[serde(default)]
    #[schemars(range(min = 0, max = 65535))]
    pub weight: i64,
}

impl<'de> Deserialize<'de> for PublishDomainWire {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PublishDomainWire;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a domain name or a table `{ domain, priority, weight }`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(PublishDomainWire::Domain(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                PublishDomainDetail::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(PublishDomainWire::Detailed)
            }
        }
        d.deserialize_any(V)
    }
}
