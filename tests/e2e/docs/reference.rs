//! `docs/src/reference/config.md` from the config's JSON Schema: one section per TOML table, a
//! row per key with its type, range, allowed values, default and the schema's description (the
//! doc comments of the config's wire types).

use serde_json::{Map, Value};

use super::anchor;

/// What a map's keys stand for in a table path (`[hosts.NAME]`), by the map's own key.
const PLACEHOLDERS: &[(&str, &str)] = &[("hosts", "NAME"), ("products", "PRODUCT")];

pub fn render(schema: &Value) -> String {
    let mut page = String::from(
        "# Config reference\n\n\
         <!-- Generated from `kmsconf schema` by tests/e2e/docs/reference.rs: do not edit. Change \
         the doc comments of the config's wire types, then run \
         `KMSCONF_UPDATE_DOCS=1 cargo test --test e2e docs::`. -->\n\n\
         Every key of `kmsconf.toml`, generated from its JSON Schema (`kmsconf schema`, committed as \
         `schema/kmsconf.schema.json`). A key marked *required* must be present when its table is; \
         any other key may be left out, and an unknown key is an error. What the tables are for, \
         with examples: [The config file](../config.md); each service setting's `slmgr.vbs` \
         equivalent: [Service settings](settings.md).\n",
    );
    let mut sections = vec![section("Top level".into(), String::new(), schema.clone())];
    let mut i = 0;
    while i < sections.len() {
        let (text, children) = sections[i].render(schema);
        page.push_str(&text);
        sections.extend(children);
        i += 1;
    }
    page
}

/// One table of the config: its heading, the TOML path of its keys (`hosts.NAME.service`, empty
/// at the top) and its object schema.
struct Section {
    title: String,
    path: String,
    schema: Value,
}

impl Section {
    /// The section's markdown, and the sections of the tables its keys hold.
    fn render(&self, root: &Value) -> (String, Vec<Section>) {
        let mut text = format!("\n## {}\n\n", self.title);
        if let Some(d) = description(&self.schema) {
            text.push_str(&format!("{d}\n\n"));
        }
        text.push_str("| key | type | default | description |\n|---|---|---|---|\n");
        let required: Vec<&str> = self.schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut children = Vec::new();
        let empty = Map::new();
        for (key, prop) in self.schema["properties"].as_object().unwrap_or(&empty) {
            let (kind, child) = self.describe(root, key, prop);
            children.extend(child);
            let name = if required.contains(&key.as_str()) {
                format!("`{key}` (*required*)")
            } else {
                format!("`{key}`")
            };
            let default = prop.get("default").map(toml_value).unwrap_or_default();
            let about = [description(prop), values(root, prop)]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            text.push_str(&format!(
                "| {name} | {} | {} | {} |\n",
                cell(&kind),
                cell(&default),
                cell(&about)
            ));
        }
        (text, children)
    }

    /// A key's type, and the section of the table it holds, if it holds one.
    fn describe(&self, root: &Value, key: &str, prop: &Value) -> (String, Option<Section>) {
        let path = if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        };
        let prop = resolve(root, prop);
        let table = tables_by_key(root, key, &path, &prop)
            .or_else(|| {
                object_with_properties(root, &prop).map(|table| {
                    let title = format!("`[{path}]`");
                    (link("table", &title), section(title, path.clone(), table))
                })
            })
            .or_else(|| self.array_of_tables(root, key, &path, &prop));
        match table {
            Some((kind, child)) => (kind, Some(child)),
            None => (type_name(root, &prop), None),
        }
    }

    /// An array whose entries may be tables (`publish_domains`).
    fn array_of_tables(
        &self,
        root: &Value,
        key: &str,
        path: &str,
        prop: &Value,
    ) -> Option<(String, Section)> {
        if !has_type(prop, "array") {
            return None;
        }
        let items = resolve(root, &prop["items"]);
        let mut table = alternatives(&items)
            .into_iter()
            .find_map(|alt| object_with_properties(root, &resolve(root, &alt)))?;
        // the entry's table has no description of its own: its array item's says it
        if let (Some(t), Some(d)) = (table.as_object_mut(), items.get("description")) {
            t.entry("description").or_insert_with(|| d.clone());
        }
        let title = format!("`[{}]` `{key}` entries", self.path);
        let kind = format!("array of {}", type_name(root, &items))
            .replace("a table", &link("a table", &title))
            + &array_limits(prop);
        Some((kind, section(title, path.into(), table)))
    }
}

/// A key holding tables by name: `hosts` (any name) or `products` (named keys of one type).
fn tables_by_key(root: &Value, key: &str, path: &str, prop: &Value) -> Option<(String, Section)> {
    let placeholder = PLACEHOLDERS
        .iter()
        .find(|(k, _)| *k == key)
        .map_or("KEY", |(_, p)| p);
    let path = format!("{path}.{placeholder}");
    let title = format!("`[{path}]`");
    if let Some(props) = prop["properties"].as_object() {
        let types: Vec<&Value> = props.values().collect();
        if types.len() < 2 || types.windows(2).any(|w| w[0] != w[1]) {
            return None;
        }
        let table = object_with_properties(root, &resolve(root, types[0]))?;
        let ids: Vec<String> = props.keys().map(|k| format!("`{k}`")).collect();
        let kind = format!(
            "tables by {placeholder} ({}): {}",
            ids.join(", "),
            link("", &title)
        );
        return Some((kind, section(title, path, table)));
    }
    let table = object_with_properties(root, &resolve(root, prop.get("additionalProperties")?))?;
    let names = prop["propertyNames"]["pattern"]
        .as_str()
        .map(|p| format!(", {placeholder} matching `{p}`"))
        .unwrap_or_default();
    let kind = format!("tables by {placeholder}: {}{names}", link("", &title));
    Some((kind, section(title, path, table)))
}

/// Whether a schema's `type` is `kind`, or a list holding it (`["array", "null"]`).
fn has_type(schema: &Value, kind: &str) -> bool {
    schema["type"] == kind
        || schema["type"]
            .as_array()
            .is_some_and(|t| t.iter().any(|k| k == kind))
}

fn section(title: String, path: String, schema: Value) -> Section {
    Section {
        title,
        path,
        schema,
    }
}

/// A markdown link to a section of this page; `text` empty = the section's title.
fn link(text: &str, title: &str) -> String {
    let text = if text.is_empty() { title } else { text };
    format!("[{text}](#{})", anchor(&title.replace('`', "")))
}

/// `$ref` followed, and `anyOf [X, null]` (an optional key) taken as X. The key's own
/// description and default stay on the key: a table's section shows its type's description.
fn resolve(root: &Value, schema: &Value) -> Value {
    if let Some(r) = schema["$ref"].as_str() {
        return root["$defs"][r.trim_start_matches("#/$defs/")].clone();
    }
    let alts = alternatives(schema);
    if schema.get("anyOf").is_some() && alts.len() == 1 {
        return resolve(root, &alts[0]);
    }
    schema.clone()
}

/// The non-null alternatives of an `anyOf` / `oneOf`, or the schema itself.
fn alternatives(schema: &Value) -> Vec<Value> {
    match schema
        .get("anyOf")
        .or(schema.get("oneOf"))
        .and_then(Value::as_array)
    {
        Some(alts) => alts
            .iter()
            .filter(|a| a["type"] != "null")
            .cloned()
            .collect(),
        None => vec![schema.clone()],
    }
}

/// The schema of a TOML table with named keys, if that is what `schema` is (a secret's
/// `{ env }` / `{ file }` forms are not: they have one key each and are shown as a type).
fn object_with_properties(root: &Value, schema: &Value) -> Option<Value> {
    let schema = resolve(root, schema);
    let props = schema["properties"].as_object()?;
    (props.len() > 1 || schema["required"].as_array().is_none_or(Vec::is_empty)).then_some(schema)
}

fn type_name(root: &Value, schema: &Value) -> String {
    let schema = resolve(root, schema);
    if let Some(c) = schema.get("const") {
        return toml_value(c);
    }
    if let Some(values) = schema["enum"].as_array() {
        return values
            .iter()
            .map(toml_value)
            .collect::<Vec<_>>()
            .join(" | ");
    }
    if schema.get("anyOf").or(schema.get("oneOf")).is_some() {
        let alts: Vec<String> = alternatives(&schema)
            .iter()
            .map(|a| type_name(root, a))
            .collect();
        return alts.join(" or ");
    }
    let kind = match &schema["type"] {
        Value::Array(types) => types
            .iter()
            .find(|t| *t != "null")
            .and_then(Value::as_str)
            .unwrap_or("any"),
        t => t.as_str().unwrap_or("any"),
    };
    match kind {
        "integer" => match (schema["minimum"].as_i64(), schema["maximum"].as_i64()) {
            (Some(min), Some(max)) => format!("integer, {min} to {max}"),
            _ => "integer".into(),
        },
        "array" => {
            format!("array of {}", type_name(root, &schema["items"])) + &array_limits(&schema)
        }
        "object" => match schema["properties"].as_object() {
            Some(props) if props.len() == 1 => {
                let (key, value) = props.iter().next().expect("one key");
                format!("`{{ {key} = {} }}`", placeholder_value(value))
            }
            _ => "a table".into(),
        },
        other => other.into(),
    }
}

fn placeholder_value(schema: &Value) -> String {
    let d = schema["description"].as_str().unwrap_or("");
    if d.starts_with("Environment variable") {
        "\"VAR\"".into()
    } else if schema["type"] == "string" {
        "\"path\"".into()
    } else {
        "…".into()
    }
}

fn array_limits(schema: &Value) -> String {
    let mut limits = String::new();
    if let Some(n) = schema["minItems"].as_u64() {
        limits.push_str(&format!(", at least {n}"));
    }
    if schema["uniqueItems"] == true {
        limits.push_str(", each once");
    }
    limits
}

/// For a key whose values are listed (`oneOf` constants with descriptions): each value and what
/// it means.
fn values(root: &Value, prop: &Value) -> Option<String> {
    let mut schema = resolve(root, prop);
    if has_type(&schema, "array") {
        schema = resolve(root, &schema["items"]);
    }
    let listed: Vec<String> = schema["oneOf"]
        .as_array()?
        .iter()
        .filter_map(|v| {
            let value = v.get("const")?;
            let what = v["description"].as_str().map(one_line).unwrap_or_default();
            let what = what.trim_end_matches('.');
            Some(format!("{}: {what}", toml_value(value)))
        })
        .collect();
    (!listed.is_empty()).then(|| format!("Values: {}", listed.join("; ")))
}

fn description(schema: &Value) -> Option<String> {
    schema["description"].as_str().map(one_line)
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn toml_value(value: &Value) -> String {
    match value {
        Value::String(s) => format!("`\"{s}\"`"),
        Value::Null => String::new(),
        other => format!("`{other}`"),
    }
}

/// Text for a table cell: `|` escaped (GitHub and mdBook take `\|` inside code spans too).
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}
