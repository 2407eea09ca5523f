//! Compiles `proto/` with protox (pure Rust, no system `protoc`), writes the file
//! descriptor set that gRPC reflection serves, and annotates the generated types so
//! that, with the `rest` feature, they are the REST API's JSON bodies too.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorSet};

type BuildResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Text fields whose empty proto string the REST API writes as `null` (proto3 cannot
/// tell an absent string from an empty one without `optional`).
const OPTIONAL_TEXT_FIELDS: &[&str] = &[
    ".haven.case.v1.Note.body",
    ".haven.referral.v1.Organization.settlement",
];

/// String fields named like ids (`id`, `*_id`) that are not UUIDs.
const NON_UUID_ID_FIELDS: &[&str] = &["request_id"];

fn main() -> BuildResult<()> {
    // Read when the script runs, not when it was compiled: a compiled build script can
    // be reused for a checkout in another directory.
    let proto_root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        "haven/common/v1/events.proto",
        "haven/common/v1/paging.proto",
        "haven/intake/v1/intake.proto",
        "haven/intake/v1/clocks.proto",
        "haven/intake/v1/indicator_sets.proto",
        "haven/case/v1/case.proto",
        "haven/referral/v1/referral.proto",
        "haven/reporting/v1/reporting.proto",
    ];
    println!("cargo:rerun-if-changed={}", proto_root.display());

    let mut compiler = protox::Compiler::new([&proto_root])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(files)?;

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("haven_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;

    let descriptors = compiler.file_descriptor_set();
    let rest = RestAnnotations::of(&descriptors)?;
    std::fs::write(out_dir.join("rest_enums.rs"), &rest.enum_constants)?;

    let mut builder = tonic_prost_build::configure()
        .build_server(true)
        .build_client(true);
    for (path, attribute) in &rest.type_attributes {
        builder = builder.type_attribute(path, attribute);
    }
    for (path, attribute) in &rest.field_attributes {
        builder = builder.field_attribute(path, attribute);
    }
    builder.compile_fds(descriptors)?;
    Ok(())
}

/// What the `rest` feature adds to the generated code: serde and utoipa derives on
/// every Haven message and enum, field attributes for what the REST API spells
/// differently from prost's Rust types, and each enum's list of values.
#[derive(Default)]
struct RestAnnotations {
    /// Fully qualified proto type → attribute.
    type_attributes: Vec<(String, String)>,
    /// Fully qualified proto field or enum value → attribute.
    field_attributes: Vec<(String, String)>,
    /// Rust source: an `ALL` constant for every enum.
    enum_constants: String,
}

impl RestAnnotations {
    fn of(descriptors: &FileDescriptorSet) -> BuildResult<Self> {
        let haven_files = descriptors
            .file
            .iter()
            .filter(|file| file.package().starts_with("haven."));
        let mut enum_paths = BTreeMap::new();
        for file in haven_files.clone() {
            for enumeration in &file.enum_type {
                let proto_name = format!(".{}.{}", file.package(), enumeration.name());
                let rust_path = format!("{}::{}", rust_module(file.package()), enumeration.name());
                enum_paths.insert(proto_name, rust_path);
            }
        }

        let mut annotations = Self::default();
        for file in haven_files {
            for enumeration in &file.enum_type {
                let proto_name = format!(".{}.{}", file.package(), enumeration.name());
                annotations.annotate_enum(&proto_name, &enum_paths[&proto_name], enumeration)?;
            }
            for message in &file.message_type {
                let proto_name = format!(".{}.{}", file.package(), message.name());
                annotations.annotate_message(&proto_name, message, &enum_paths)?;
            }
        }
        for path in OPTIONAL_TEXT_FIELDS {
            if !annotations.field_attributes.iter().any(|(p, _)| p == path) {
                return Err(format!("{path} in OPTIONAL_TEXT_FIELDS is not a string field").into());
            }
        }
        Ok(annotations)
    }

    /// Serialised as the value's name without the enum's prefix, lowercased
    /// (`ORGANIZATION_TYPE_NGO` → `ngo`); the zero value `*_UNSPECIFIED` has no REST
    /// spelling.
    fn annotate_enum(
        &mut self,
        proto_name: &str,
        rust_path: &str,
        enumeration: &EnumDescriptorProto,
    ) -> BuildResult<()> {
        self.type_attributes.push((
            proto_name.to_owned(),
            rest_attribute("derive(serde::Serialize, serde::Deserialize, utoipa::ToSchema)"),
        ));
        let prefix = format!("{}_", screaming_snake(enumeration.name()));
        let mut variants = Vec::new();
        for value in &enumeration.value {
            let Some(unprefixed) = value.name().strip_prefix(&prefix) else {
                return Err(
                    format!("{proto_name}.{} lacks the prefix {prefix}", value.name()).into(),
                );
            };
            let value_path = format!("{proto_name}.{}", value.name());
            if value.number() == 0 {
                self.field_attributes
                    .push((value_path, rest_attribute("serde(skip)")));
                continue;
            }
            let rename = format!("serde(rename = \"{}\")", unprefixed.to_lowercase());
            self.field_attributes
                .push((value_path, rest_attribute(&rename)));
            variants.push(format!("Self::{}", upper_camel(unprefixed)));
        }
        writeln!(
            self.enum_constants,
            "impl {rust_path} {{\n    \
                /// Every value with a REST spelling, in proto order (all but the zero value).\n    \
                pub const ALL: &'static [Self] = &[{}];\n\
            }}",
            variants.join(", ")
        )?;
        Ok(())
    }

    fn annotate_message(
        &mut self,
        proto_name: &str,
        message: &DescriptorProto,
        enum_paths: &BTreeMap<String, String>,
    ) -> BuildResult<()> {
        if message
            .nested_type
            .iter()
            .any(|nested| !nested.options.as_ref().is_some_and(|o| o.map_entry()))
            || !message.enum_type.is_empty()
        {
            return Err(
                format!("{proto_name}: nested types are not supported by the REST derive").into(),
            );
        }
        self.type_attributes.push((
            proto_name.to_owned(),
            rest_attribute("derive(serde::Serialize, utoipa::ToSchema)"),
        ));
        for field in &message.field {
            let field_path = format!("{proto_name}.{}", field.name());
            for attribute in field_attributes(&field_path, field, enum_paths)? {
                self.field_attributes
                    .push((field_path.clone(), rest_attribute(&attribute)));
            }
        }
        Ok(())
    }
}

/// The serde and utoipa attributes of one message field.
fn field_attributes(
    field_path: &str,
    field: &FieldDescriptorProto,
    enum_paths: &BTreeMap<String, String>,
) -> BuildResult<Vec<String>> {
    let repeated = field.label() == Label::Repeated;
    let optional = field.proto3_optional();
    let attributes = match field.r#type() {
        Type::Enum => {
            let rust_path = enum_paths.get(field.type_name()).ok_or_else(|| {
                format!("{field_path}: enum {} is not Haven's", field.type_name())
            })?;
            let (helper, value_type) = if repeated {
                ("enum_values", format!("Vec<{rust_path}>"))
            } else if optional {
                ("optional_enum_value", format!("Option<{rust_path}>"))
            } else {
                ("enum_value", format!("Option<{rust_path}>"))
            };
            vec![
                format!("serde(serialize_with = \"crate::rest::{helper}::<{rust_path}, _>\")"),
                format!("schema(value_type = {value_type})"),
            ]
        }
        Type::Message if field.type_name() == ".google.protobuf.Timestamp" => {
            if repeated {
                return Err(format!("{field_path}: repeated timestamps are not supported").into());
            }
            vec![
                "serde(serialize_with = \"crate::rest::timestamp\")".to_owned(),
                "schema(value_type = Option<String>, format = DateTime)".to_owned(),
            ]
        }
        Type::String if !repeated => {
            let optional_text = OPTIONAL_TEXT_FIELDS.contains(&field_path);
            let uuid = (field.name() == "id" || field.name().ends_with("_id"))
                && !NON_UUID_ID_FIELDS.contains(&field.name());
            let mut schema = Vec::new();
            let mut attributes = Vec::new();
            if optional_text {
                attributes.push("serde(serialize_with = \"crate::rest::non_empty\")".to_owned());
                schema.push("value_type = Option<String>");
            }
            if uuid {
                schema.push("format = Uuid");
            }
            if !schema.is_empty() {
                attributes.push(format!("schema({})", schema.join(", ")));
            }
            attributes
        }
        _ => Vec::new(),
    };
    Ok(attributes)
}

/// An attribute that only the `rest` feature turns on.
fn rest_attribute(attribute: &str) -> String {
    format!("#[cfg_attr(feature = \"rest\", {attribute})]")
}

/// `haven.referral.v1` → `crate::referral::v1`, the module `lib.rs` includes it in.
fn rust_module(package: &str) -> String {
    let inner = package.strip_prefix("haven.").unwrap_or(package);
    format!("crate::{}", inner.replace('.', "::"))
}

/// `OrganizationType` → `ORGANIZATION_TYPE`.
fn screaming_snake(name: &str) -> String {
    let mut out = String::new();
    for (index, character) in name.chars().enumerate() {
        if character.is_ascii_uppercase() && index > 0 {
            out.push('_');
        }
        out.push(character.to_ascii_uppercase());
    }
    out
}

/// `INTERNATIONAL_ORGANIZATION` → `InternationalOrganization`, as prost names variants.
fn upper_camel(screaming: &str) -> String {
    screaming
        .split('_')
        .map(|word| {
            let mut characters = word.chars();
            characters.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + &characters.as_str().to_ascii_lowercase()
            })
        })
        .collect()
}
