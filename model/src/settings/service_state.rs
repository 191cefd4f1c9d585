//! The KMS settings a host holds: one value per row of the [`table`](super::table), kept by the
//! row's key, and whether a restart is pending. In a lab state file and a plan file it is one flat
//! object, a field per row in the table's order and then `restart_pending`, as the struct it
//! replaces wrote it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{table, ServiceSetting, Setting, SettingValue};

/// `SoftwareLicensingService` properties and the `SoftwareProtectionPlatform` registry values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceState {
    /// By key, every row of the table (a row missing here is at its default).
    values: BTreeMap<&'static str, SettingValue>,
    /// A setting was written that takes effect only after the Software Protection service
    /// restarts, and it has not restarted since.
    pub restart_pending: bool,
}

const RESTART_PENDING: &str = "restart_pending";

impl ServiceState {
    /// Every KMS setting at Windows' default: what a fresh host has, and what discovery assumes
    /// for a value the host does not show.
    pub fn windows_default() -> Self {
        Self {
            values: table().iter().map(|r| (r.key, r.default.clone())).collect(),
            restart_pending: false,
        }
    }

    /// What the host holds for `row` (the port: 0 when it was never set).
    pub fn stored(&self, row: &Setting) -> SettingValue {
        self.values
            .get(row.key)
            .cloned()
            .unwrap_or_else(|| row.default.clone())
    }

    /// The value in effect for `row`: what planning compares with and apply reads back.
    pub fn current(&self, row: &Setting) -> SettingValue {
        row.in_effect(self.stored(row))
    }

    /// The value in effect for the setting `key`, if the table has one.
    pub fn value(&self, key: &str) -> Option<SettingValue> {
        super::find(key).map(|row| self.current(row))
    }

    /// Writes `value` for `row`: what a lab host does when it applies the setting, and how
    /// discovery fills in what it read. A value not of the row's kind is not written.
    pub fn store(&mut self, row: &'static Setting, value: SettingValue) {
        if value.kind() == row.kind {
            self.values.insert(row.key, value);
        }
    }
}

impl ServiceSetting {
    /// The value the host has now for this setting (what planning compares with and what apply
    /// reads back).
    pub fn current(&self, state: &ServiceState) -> ServiceSetting {
        self.at(state.current(self.setting()))
    }
}

impl Serialize for ServiceState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let rows = table();
        let mut s = serializer.serialize_struct("ServiceState", rows.len() + 1)?;
        for row in rows {
            s.serialize_field(row.key, &self.stored(row))?;
        }
        s.serialize_field(RESTART_PENDING, &self.restart_pending)?;
        s.end()
    }
}

/// The fields of the flat form: the table's keys and `restart_pending`.
fn fields() -> &'static [&'static str] {
    static FIELDS: OnceLock<Vec<&'static str>> = OnceLock::new();
    FIELDS.get_or_init(|| {
        let keys = table().iter().map(|r| r.key);
        keys.chain([RESTART_PENDING]).collect()
    })
}

/// A field of the flat form: a row, or `restart_pending`.
enum Field {
    Row(&'static Setting),
    RestartPending,
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl Visitor<'_> for FieldVisitor {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("field identifier")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
                if v == RESTART_PENDING {
                    return Ok(Field::RestartPending);
                }
                match table().iter().find(|r| r.key == v) {
                    Some(row) => Ok(Field::Row(row)),
                    None => Err(E::unknown_field(v, fields())),
                }
            }
        }
        d.deserialize_identifier(FieldVisitor)
    }
}

impl<'de> Deserialize<'de> for ServiceState {
    /// Every field is required and no other is taken, as `deny_unknown_fields` did.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct StateVisitor;
        impl<'de> Visitor<'de> for StateVisitor {
            type Value = ServiceState;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("struct ServiceState")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ServiceState, A::Error> {
                let mut values = BTreeMap::new();
                let mut restart_pending = None;
                while let Some(field) = map.next_key::<Field>()? {
                    match field {
                        Field::Row(row) => {
                            let value = map.next_value_seed(row.kind)?;
                            if values.insert(row.key, value).is_some() {
                                return Err(de::Error::duplicate_field(row.key));
                            }
                        }
                        Field::RestartPending => {
                            if restart_pending.replace(map.next_value()?).is_some() {
                                return Err(de::Error::duplicate_field(RESTART_PENDING));
                            }
                        }
                    }
                }
                if let Some(row) = table().iter().find(|r| !values.contains_key(r.key)) {
                    return Err(de::Error::missing_field(row.key));
                }
                let restart_pending =
                    restart_pending.ok_or_else(|| de::Error::missing_field(RESTART_PENDING))?;
                Ok(ServiceState {
                    values,
                    restart_pending,
                })
            }
        }
        d.deserialize_map(StateVisitor)
    }
}
