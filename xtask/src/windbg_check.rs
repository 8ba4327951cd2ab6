//! `tools/windbg/ringside.js` against the `ringside.pdb` the package step
//! built: the names the WinDbg extension uses must exist in the PDB, so that
//! a rename in the driver fails `cargo xtask test` instead of a user's
//! debugging session.
//!
//! The script's manifest block (`const MODULE`, `GLOBALS_SYMBOL`,
//! `GLOBALS_TYPE`, the count constants and `const PATHS = { … }`) is parsed
//! from the script itself; every path is walked through the PDB's type
//! records field by field, must end in a scalar, and every `name[COUNT]`
//! array must have exactly COUNT elements. The script is also checked to
//! reach the globals only through that manifest (`host.getModuleSymbol`
//! with the manifest's constants, `PATHS.x` references that exist).

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::process::Command;

use pdb::{FallibleIterator, PrimitiveKind, SymbolData, TypeData, TypeIndex};

/// What the script declares it reads.
#[derive(Debug)]
pub struct Manifest {
    pub module: String,
    pub globals_symbol: String,
    pub globals_type: String,
    /// `(key, path)` from `const PATHS`.
    pub paths: Vec<(String, String)>,
    /// Count constants: an array literal's length or a number.
    pub counts: HashMap<String, usize>,
    /// String array constants (e.g. KINDS), for comparison with the wire crate.
    pub string_arrays: HashMap<String, Vec<String>>,
    /// `const MAGIC = "0x…"`.
    pub magic: Option<String>,
}

fn const_rhs<'a>(js: &'a str, name: &str) -> Option<&'a str> {
    let needle = format!("const {name} = ");
    let start = js.find(&needle)? + needle.len();
    Some(&js[start..])
}

fn const_string(js: &str, name: &str) -> Result<String, String> {
    let rhs =
        const_rhs(js, name).ok_or_else(|| format!("ringside.js: no `const {name} = \"…\";`"))?;
    let rhs = rhs
        .strip_prefix('"')
        .ok_or_else(|| format!("ringside.js: `const {name}` is not a string literal"))?;
    let end = rhs
        .find('"')
        .ok_or_else(|| format!("ringside.js: unterminated string in `const {name}`"))?;
    Ok(rhs[..end].to_string())
}

/// Every `"…"` literal in `text`, in order.
fn string_literals(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('"') {
        let after = &rest[start + 1..];
        match after.find('"') {
            Some(end) => {
                out.push(after[..end].to_string());
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    out
}

/// Strips `//` comments (the manifest has no `//` inside strings).
fn without_comments(text: &str) -> String {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn parse_manifest(js: &str) -> Result<Manifest, String> {
    let module = const_string(js, "MODULE")?;
    let globals_symbol = const_string(js, "GLOBALS_SYMBOL")?;
    let globals_type = const_string(js, "GLOBALS_TYPE")?;
    let magic = const_string(js, "MAGIC").ok();

    let body = const_rhs(js, "PATHS").ok_or("ringside.js: no `const PATHS = { … };` manifest")?;
    let end = body
        .find("};")
        .ok_or("ringside.js: `const PATHS` is not terminated by `};`")?;
    let mut paths = Vec::new();
    for line in without_comments(&body[..end]).lines() {
        let line = line.trim().trim_start_matches('{').trim();
        if line.is_empty() {
            continue;
        }
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| format!("ringside.js: PATHS line `{line}` is not `key: \"path\",`"))?;
        let literals = string_literals(value);
        let [path] = literals.as_slice() else {
            return Err(format!(
                "ringside.js: PATHS.{} must be one string literal",
                key.trim()
            ));
        };
        paths.push((key.trim().to_string(), path.clone()));
    }
    if paths.is_empty() {
        return Err("ringside.js: `const PATHS` is empty".into());
    }

    // Every bracketed count named in a path must be a const of the script.
    let mut counts = HashMap::new();
    let mut string_arrays = HashMap::new();
    for (key, path) in &paths {
        for segment in path.split('.') {
            let Some((_, count)) = segment.split_once('[') else {
                continue;
            };
            let count = count.trim_end_matches(']');
            if counts.contains_key(count) {
                continue;
            }
            let rhs = const_rhs(js, count).ok_or_else(|| {
                format!("ringside.js: PATHS.{key} names count `{count}`, which is no `const`")
            })?;
            if let Some(array) = rhs.strip_prefix('[') {
                let end = array
                    .find("];")
                    .ok_or_else(|| format!("ringside.js: `const {count}` array not terminated"))?;
                let items = string_literals(&without_comments(&array[..end]));
                counts.insert(count.to_string(), items.len());
                string_arrays.insert(count.to_string(), items);
            } else {
                let digits: String = rhs.chars().take_while(|c| c.is_ascii_digit()).collect();
                let n = digits.parse().map_err(|_| {
                    format!("ringside.js: `const {count}` is neither an array literal nor a number")
                })?;
                counts.insert(count.to_string(), n);
            }
        }
    }
    Ok(Manifest {
        module,
        globals_symbol,
        globals_type,
        paths,
        counts,
        string_arrays,
        magic,
    })
}

/// Checks that the script's code uses the globals only through the manifest.
pub fn check_usage(js: &str, manifest: &Manifest) -> Vec<String> {
    let mut problems = Vec::new();
    let code = without_comments(js);
    let calls: Vec<_> = code.match_indices("host.getModuleSymbol(").collect();
    if calls.is_empty() {
        problems.push("ringside.js never calls host.getModuleSymbol(…)".to_string());
    }
    for (at, _) in calls {
        let args = &code[at + "host.getModuleSymbol(".len()..];
        let args = &args[..args.find(')').unwrap_or(args.len())];
        if args.trim() != "MODULE, GLOBALS_SYMBOL, GLOBALS_TYPE" {
            problems.push(format!(
                "ringside.js: host.getModuleSymbol({args}) must use the manifest's (MODULE, GLOBALS_SYMBOL, GLOBALS_TYPE)"
            ));
        }
    }
    for (at, _) in code.match_indices("PATHS.") {
        let key: String = code[at + 6..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !manifest.paths.iter().any(|(k, _)| *k == key) {
            problems.push(format!(
                "ringside.js uses PATHS.{key}, which the manifest does not define"
            ));
        }
    }
    if !code.contains("function initializeScript()")
        || !code.contains("host.functionAlias(ringside, \"ringside\")")
    {
        problems.push(
            "ringside.js: initializeScript must return host.functionAlias(ringside, \"ringside\")"
                .into(),
        );
    }
    problems
}

/// The parts of ringside.pdb the check needs.
#[derive(Debug)]
pub struct PdbModel {
    types: HashMap<TypeIndex, Ty>,
    /// Full (non-forward) record definitions by unique name and by name.
    by_unique: HashMap<String, TypeIndex>,
    by_name: HashMap<String, TypeIndex>,
    /// S_GDATA32 / S_LDATA32: name -> type index.
    pub data: Vec<(String, TypeIndex)>,
    /// S_PUB32 names.
    pub publics: Vec<String>,
}

#[derive(Debug, Clone)]
enum Ty {
    Record {
        name: String,
        unique: Option<String>,
        fields: Option<TypeIndex>,
        size: u64,
        forward: bool,
    },
    Fields {
        members: Vec<(String, TypeIndex)>,
        continuation: Option<TypeIndex>,
    },
    Array {
        element: TypeIndex,
        bytes: u64,
    },
    Scalar {
        size: u64,
    },
    Modifier(TypeIndex),
    Other,
}

fn primitive_size(kind: PrimitiveKind) -> u64 {
    use PrimitiveKind::*;
    match kind {
        Char | UChar | RChar | I8 | U8 | Bool8 => 1,
        WChar | RChar16 | Short | UShort | I16 | U16 | Bool16 | F16 => 2,
        RChar32 | Long | ULong | I32 | U32 | F32 | F32PP | Bool32 | HRESULT => 4,
        Quad | UQuad | I64 | U64 | F64 | Bool64 | F48 => 8,
        Octa | UOcta | I128 | U128 | F128 => 16,
        _ => 0,
    }
}

pub fn load_pdb(path: &Path) -> Result<PdbModel, String> {
    let err = |e: pdb::Error| format!("reading {}: {e}", path.display());
    let file = File::open(path).map_err(|e| format!("opening {}: {e}", path.display()))?;
    let mut pdb = pdb::PDB::open(file).map_err(err)?;

    let type_information = pdb.type_information().map_err(err)?;
    let mut types = HashMap::new();
    let mut by_unique = HashMap::new();
    let mut by_name = HashMap::new();
    let mut iter = type_information.iter();
    while let Some(item) = iter.next().map_err(err)? {
        let index = item.index();
        let ty = match item.parse() {
            Ok(TypeData::Class(c)) => Ty::Record {
                name: c.name.to_string().into_owned(),
                unique: c.unique_name.map(|u| u.to_string().into_owned()),
                fields: c.fields,
                size: c.size,
                forward: c.properties.forward_reference(),
            },
            Ok(TypeData::Union(u)) => Ty::Record {
                name: u.name.to_string().into_owned(),
                unique: u.unique_name.map(|u| u.to_string().into_owned()),
                fields: Some(u.fields),
                size: u.size,
                forward: u.properties.forward_reference(),
            },
            Ok(TypeData::FieldList(list)) => Ty::Fields {
                members: list
                    .fields
                    .iter()
                    .filter_map(|f| match f {
                        TypeData::Member(m) => {
                            Some((m.name.to_string().into_owned(), m.field_type))
                        }
                        _ => None,
                    })
                    .collect(),
                continuation: list.continuation,
            },
            Ok(TypeData::Array(a)) => Ty::Array {
                element: a.element_type,
                bytes: a.dimensions.last().copied().map_or(0, u64::from),
            },
            Ok(TypeData::Primitive(p)) => Ty::Scalar {
                size: if p.indirection.is_some() {
                    8
                } else {
                    primitive_size(p.kind)
                },
            },
            Ok(TypeData::Pointer(_)) => Ty::Scalar { size: 8 },
            Ok(TypeData::Enumeration(e)) => Ty::Modifier(e.underlying_type),
            Ok(TypeData::Modifier(m)) => Ty::Modifier(m.underlying_type),
            _ => Ty::Other,
        };
        if let Ty::Record {
            name,
            unique,
            forward: false,
            ..
        } = &ty
        {
            if let Some(unique) = unique {
                by_unique.insert(unique.clone(), index);
            }
            by_name.entry(name.clone()).or_insert(index);
        }
        types.insert(index, ty);
    }

    let mut data = Vec::new();
    let mut publics = Vec::new();
    let globals = pdb.global_symbols().map_err(err)?;
    let mut symbols = globals.iter();
    while let Some(symbol) = symbols.next().map_err(err)? {
        match symbol.parse() {
            Ok(SymbolData::Data(d)) => data.push((d.name.to_string().into_owned(), d.type_index)),
            Ok(SymbolData::Public(p)) => publics.push(p.name.to_string().into_owned()),
            _ => {}
        }
    }
    Ok(PdbModel {
        types,
        by_unique,
        by_name,
        data,
        publics,
    })
}

impl PdbModel {
    /// Primitive type indices (< 0x1000) are not in the TPI stream.
    fn get(&self, index: TypeIndex) -> Ty {
        if index.0 < 0x1000 {
            let kind = index.0 & 0xff;
            let pointer = index.0 & 0xf00 != 0;
            // CodeView basic type sizes by low byte (enough for the kinds
            // Rust emits: integers, bool, char, pointers).
            let size = if pointer {
                8
            } else {
                match kind {
                    0x10 | 0x20 | 0x30 | 0x68 | 0x69 => 1,
                    0x11 | 0x21 | 0x31 | 0x71 | 0x72 | 0x73 => 2,
                    0x12 | 0x22 | 0x32 | 0x74 | 0x75 | 0x40 | 0x7b => 4,
                    0x13 | 0x23 | 0x33 | 0x76 | 0x77 | 0x41 => 8,
                    0x14 | 0x24 | 0x78 | 0x79 => 16,
                    _ => 0,
                }
            };
            return if kind == 0x03 && !pointer {
                Ty::Other
            } else {
                Ty::Scalar { size }
            };
        }
        self.types.get(&index).cloned().unwrap_or(Ty::Other)
    }

    /// Follows modifiers and forward references to the defining record.
    fn resolve(&self, mut index: TypeIndex) -> (TypeIndex, Ty) {
        for _ in 0..16 {
            match self.get(index) {
                Ty::Modifier(under) => index = under,
                Ty::Record {
                    forward: true,
                    unique,
                    name,
                    ..
                } => {
                    let full = unique
                        .as_ref()
                        .and_then(|u| self.by_unique.get(u))
                        .or_else(|| self.by_name.get(&name));
                    match full {
                        Some(&full) => index = full,
                        None => return (index, self.get(index)),
                    }
                }
                other => return (index, other),
            }
        }
        (index, self.get(index))
    }

    fn type_name(&self, index: TypeIndex) -> String {
        match self.resolve(index).1 {
            Ty::Record { name, .. } => name,
            Ty::Array { .. } => "array".into(),
            Ty::Scalar { .. } => "scalar".into(),
            _ => format!("type {index}"),
        }
    }

    fn members(&self, record: &Ty) -> Vec<(String, TypeIndex)> {
        let mut out = Vec::new();
        let Ty::Record {
            fields: Some(first),
            ..
        } = record
        else {
            return out;
        };
        let mut list = *first;
        for _ in 0..64 {
            match self.get(list) {
                Ty::Fields {
                    members,
                    continuation,
                } => {
                    out.extend(members);
                    match continuation {
                        Some(next) => list = next,
                        None => break,
                    }
                }
                _ => break,
            }
        }
        out
    }

    fn size_of(&self, index: TypeIndex) -> u64 {
        match self.resolve(index).1 {
            Ty::Record { size, .. } | Ty::Scalar { size } => size,
            Ty::Array { bytes, .. } => bytes,
            _ => 0,
        }
    }

    /// Walks `path` from the record `root`; `Err` says which segment failed and why.
    pub fn walk(
        &self,
        root: TypeIndex,
        path: &str,
        counts: &HashMap<String, usize>,
    ) -> Result<(), String> {
        let mut current = root;
        for segment in path.split('.') {
            let (field, count) = match segment.split_once('[') {
                Some((field, count)) => (field, Some(count.trim_end_matches(']'))),
                None => (segment, None),
            };
            let (_, ty) = self.resolve(current);
            if !matches!(ty, Ty::Record { .. }) {
                return Err(format!(
                    "`{field}`: `{}` is not a struct, so it has no fields",
                    self.type_name(current)
                ));
            }
            let members = self.members(&ty);
            let Some((_, next)) = members.iter().find(|(name, _)| name == field) else {
                let names: Vec<_> = members.iter().map(|(n, _)| n.as_str()).collect();
                return Err(format!(
                    "type `{}` has no field `{field}` (it has: {})",
                    self.type_name(current),
                    names.join(", ")
                ));
            };
            current = *next;
            if let Some(count) = count {
                let (_, ty) = self.resolve(current);
                let Ty::Array { element, bytes } = ty else {
                    return Err(format!(
                        "`{field}` is indexed as `[{count}]` but is not an array"
                    ));
                };
                let element_size = self.size_of(element);
                let expected = counts.get(count).copied().unwrap_or(0);
                let actual = bytes.checked_div(element_size).unwrap_or(0);
                if actual != expected as u64 {
                    return Err(format!(
                        "`{field}` has {actual} elements in ringside.pdb but the script's `{count}` has {expected}"
                    ));
                }
                current = element;
            }
        }
        match self.resolve(current).1 {
            Ty::Scalar { .. } => Ok(()),
            _ => Err(format!(
                "ends at `{}`, not at an integer or pointer the script can print",
                self.type_name(current)
            )),
        }
    }
}

/// Checks the manifest against the PDB; returns every problem found.
pub fn check_against_pdb(manifest: &Manifest, pdb: &PdbModel) -> Vec<String> {
    let mut problems = Vec::new();
    if !pdb.publics.contains(&manifest.globals_symbol) {
        problems.push(format!(
            "ringside.pdb has no public symbol `{}` (GLOBALS_SYMBOL)",
            manifest.globals_symbol
        ));
    }
    let qualified = format!("::{}", manifest.globals_symbol);
    let data = pdb
        .data
        .iter()
        .find(|(name, _)| *name == manifest.globals_symbol || name.ends_with(&qualified));
    let Some(&root) = pdb.by_name.get(&manifest.globals_type) else {
        problems.push(format!(
            "ringside.pdb has no type `{}` (GLOBALS_TYPE)",
            manifest.globals_type
        ));
        return problems;
    };
    match data {
        None => problems.push(format!(
            "ringside.pdb has no global data symbol `{}`",
            manifest.globals_symbol
        )),
        Some((name, ty)) => {
            let actual = pdb.type_name(*ty);
            if actual != manifest.globals_type {
                problems.push(format!(
                    "`{name}` has type `{actual}` in ringside.pdb, the script says `{}`",
                    manifest.globals_type
                ));
            }
        }
    }
    for (key, path) in &manifest.paths {
        if let Err(why) = pdb.walk(root, path, &manifest.counts) {
            problems.push(format!("PATHS.{key} = \"{path}\": {why}"));
        }
    }
    problems
}

/// The names in the script that mirror ringside-wire's.
pub fn check_against_wire(manifest: &Manifest) -> Vec<String> {
    use ringside_wire::EventKind;
    let mut problems = Vec::new();
    let kinds: Vec<String> = EventKind::ALL
        .iter()
        .map(|k| k.name().to_string())
        .collect();
    if manifest.string_arrays.get("KINDS") != Some(&kinds) {
        problems.push(format!(
            "ringside.js KINDS must be ringside_wire::EventKind::ALL's names in order: {kinds:?}"
        ));
    }
    let expected_magic = format!("{:#x}", u64::from_le_bytes(*b"RINGSIDE"));
    if manifest.magic.as_deref() != Some(expected_magic.as_str()) {
        problems.push(format!(
            "ringside.js MAGIC must be {expected_magic} (b\"RINGSIDE\" little-endian)"
        ));
    }
    problems
}

/// Proves the PDB check can fail: for every path, a copy of the manifest
/// with that path's first field renamed must be rejected, naming that path.
pub fn negative_control(manifest: &Manifest, pdb: &PdbModel) -> Vec<String> {
    let mut problems = Vec::new();
    for (key, path) in &manifest.paths {
        let renamed = format!("renamed_{path}");
        let mutated = Manifest {
            module: manifest.module.clone(),
            globals_symbol: manifest.globals_symbol.clone(),
            globals_type: manifest.globals_type.clone(),
            paths: vec![(key.clone(), renamed)],
            counts: manifest.counts.clone(),
            string_arrays: manifest.string_arrays.clone(),
            magic: manifest.magic.clone(),
        };
        let found = check_against_pdb(&mutated, pdb);
        if !found
            .iter()
            .any(|p| p.starts_with(&format!("PATHS.{key} ")))
        {
            problems.push(format!(
                "negative control: renaming PATHS.{key}'s first field was not detected"
            ));
        }
    }
    let mutated = Manifest {
        globals_symbol: format!("{}_RENAMED", manifest.globals_symbol),
        paths: Vec::new(),
        module: manifest.module.clone(),
        globals_type: manifest.globals_type.clone(),
        counts: manifest.counts.clone(),
        string_arrays: manifest.string_arrays.clone(),
        magic: manifest.magic.clone(),
    };
    if check_against_pdb(&mutated, pdb).is_empty() {
        problems.push("negative control: a renamed GLOBALS_SYMBOL was not detected".into());
    }
    problems
}

/// `node --check` on the script, then every check above against `pdb_path`.
pub fn run(script: &Path, pdb_path: &Path) -> Result<(), String> {
    let status = Command::new("node")
        .arg("--check")
        .arg(script)
        .status()
        .map_err(|e| format!("could not run `node --check` (is Node.js installed?): {e}"))?;
    if !status.success() {
        return Err(format!(
            "{} does not parse (node --check)",
            script.display()
        ));
    }
    let js = std::fs::read_to_string(script)
        .map_err(|e| format!("reading {}: {e}", script.display()))?;
    let manifest = parse_manifest(&js)?;
    let pdb = load_pdb(pdb_path)?;
    let mut problems = check_usage(&js, &manifest);
    problems.extend(check_against_wire(&manifest));
    problems.extend(check_against_pdb(&manifest, &pdb));
    problems.extend(negative_control(&manifest, &pdb));
    if problems.is_empty() {
        println!(
            "windbg: {} parses; symbol {}, type {} and {} field paths resolve in {}",
            script.display(),
            manifest.globals_symbol,
            manifest.globals_type,
            manifest.paths.len(),
            pdb_path.display()
        );
        Ok(())
    } else {
        Err(format!(
            "{} does not match {}:\n  - {}",
            script.display(),
            pdb_path.display(),
            problems.join("\n  - ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRIPT: &str = include_str!("../../tools/windbg/ringside.js");

    #[test]
    fn manifest_parses_from_the_shipped_script() {
        let m = parse_manifest(SCRIPT).unwrap();
        assert_eq!(m.module, "ringside");
        assert_eq!(m.globals_symbol, "RINGSIDE_GLOBALS");
        assert!(m.paths.iter().any(
            |(k, p)| k == "producerPos" && p.ends_with("lanes[MAX_LANES].producer.pos.v.value")
        ));
        assert_eq!(
            m.counts.get("KINDS"),
            Some(&ringside_wire::EVENT_KIND_COUNT)
        );
        assert!(
            check_usage(SCRIPT, &m).is_empty(),
            "{:?}",
            check_usage(SCRIPT, &m)
        );
        assert!(
            check_against_wire(&m).is_empty(),
            "{:?}",
            check_against_wire(&m)
        );
    }

    #[test]
    fn usage_check_catches_an_undeclared_path_and_a_literal_symbol() {
        let broken = SCRIPT
            .replace("at(g, PATHS.nextSeq)", "at(g, PATHS.nextSequence)")
            .replace(
                "host.getModuleSymbol(MODULE, GLOBALS_SYMBOL, GLOBALS_TYPE)",
                "host.getModuleSymbol(\"ringside\", \"X\")",
            );
        let m = parse_manifest(&broken).unwrap();
        let problems = check_usage(&broken, &m);
        assert!(
            problems.iter().any(|p| p.contains("PATHS.nextSequence")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("host.getModuleSymbol(\"ringside\", \"X\")")),
            "{problems:?}"
        );
    }

    #[test]
    fn wire_check_catches_a_reordered_kind_list() {
        let broken = SCRIPT.replacen("\"process_exit\",", "\"process_exit_renamed\",", 1);
        let m = parse_manifest(&broken).unwrap();
        assert!(!check_against_wire(&m).is_empty());
    }
}
