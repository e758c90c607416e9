//! Labelled data on disk: a folder of bona fide captures and a folder of presentation attacks
//! whose sub-folders name the attack types, optionally overridden by a `file,attack_type` CSV.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use walkdir::WalkDir;

use crate::{Class, EvalError};

/// Attack type of images placed directly in the spoof folder (not in a sub-folder) and not named
/// in the attack-type mapping.
pub const UNKNOWN_ATTACK: &str = "unknown";

/// Files with these extensions are documentation next to the images: listed as ignored, not run.
pub const NON_IMAGE_EXTENSIONS: [&str; 9] = [
    "md", "txt", "csv", "json", "toml", "yaml", "yml", "html", "pdf",
];

/// One labelled file.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub path: PathBuf,
    pub class: Class,
}

impl Item {
    /// `"bona_fide"` or `"attack"`.
    pub fn class_name(&self) -> &'static str {
        if self.class.is_bona_fide() {
            "bona_fide"
        } else {
            "attack"
        }
    }
}

/// What [`collect`] found.
#[derive(Debug, Default)]
pub struct Collected {
    /// Bona fide items first, then attacks; each group sorted by path.
    pub items: Vec<Item>,
    /// Documentation files found next to the images (not run).
    pub ignored: Vec<PathBuf>,
    /// Notes about the attack-type mapping (entries that matched nothing).
    pub notes: Vec<String>,
}

impl Collected {
    /// Attack items per attack type.
    pub fn attack_per_type(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for t in self.items.iter().filter_map(|i| i.class.attack_type()) {
            *m.entry(t.to_string()).or_default() += 1;
        }
        m
    }
}

fn is_hidden(p: &Path) -> bool {
    p.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

fn is_documentation(p: &Path) -> bool {
    p.extension().is_some_and(|e| {
        let e = e.to_string_lossy().to_ascii_lowercase();
        NON_IMAGE_EXTENSIONS.contains(&e.as_str())
    })
}

/// Every non-hidden file under `dir` (recursively, following symbolic links), sorted, split into
/// (candidates, ignored documentation). A broken link is a candidate (it fails when read, so it
/// is reported, never silently dropped).
pub fn files_under(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>), EvalError> {
    let mut files = Vec::new();
    let mut ignored = Vec::new();
    let walk = WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !is_hidden(e.path()));
    for entry in walk {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let path = e.path().unwrap_or(dir).to_path_buf();
                if e.depth() > 0 && e.loop_ancestor().is_none() && path.is_symlink() {
                    files.push(path); // a broken link: reported when it is read
                    continue;
                }
                let source = e
                    .into_io_error()
                    .unwrap_or_else(|| std::io::Error::other("file system loop"));
                return Err(EvalError::Read {
                    what: "folder",
                    path,
                    source,
                });
            }
        };
        if entry.file_type().is_dir() {
            continue;
        }
        let path = entry.into_path();
        if is_documentation(&path) {
            ignored.push(path);
        } else {
            files.push(path);
        }
    }
    files.sort();
    ignored.sort();
    Ok((files, ignored))
}

/// `file,attack_type` lines → map from key (relative path or file name) to type. `#` comments,
/// blank lines and one `file,attack_type` header are allowed; quotes around fields are dropped.
pub fn read_attack_types(path: &Path) -> Result<BTreeMap<String, String>, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|source| EvalError::Read {
        what: "attack types",
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |line: usize, message: String| EvalError::AttackTypes {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut map = BTreeMap::new();
    let mut seen_data = false;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((file, kind)) = line.split_once(',') else {
            return Err(bad(
                i + 1,
                format!("expected `file,attack_type`, got {line:?}"),
            ));
        };
        let (file, kind) = (file.trim().trim_matches('"'), kind.trim().trim_matches('"'));
        if !seen_data
            && file.eq_ignore_ascii_case("file")
            && kind.eq_ignore_ascii_case("attack_type")
        {
            seen_data = true;
            continue;
        }
        seen_data = true;
        if file.is_empty() || kind.is_empty() || kind.contains(',') {
            return Err(bad(
                i + 1,
                format!("expected `file,attack_type`, got {line:?}"),
            ));
        }
        if let Some(old) = map.insert(file.to_string(), kind.to_string()) {
            if old != kind {
                return Err(bad(
                    i + 1,
                    format!("{file} is mapped twice ({old} and {kind})"),
                ));
            }
        }
    }
    Ok(map)
}

/// Relative path with `/` separators, for matching mapping keys on every platform.
fn rel_key(path: &Path, root: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Collects the bona fide files under `live` and (if given) the attacks under `spoof`. An attack's
/// type is, in order: the mapping entry for its path relative to `spoof`, the entry for its file
/// name, the name of its top-level sub-folder, [`UNKNOWN_ATTACK`]. Mapping entries that match no
/// file are reported in [`Collected::notes`]. A folder without images is an error.
pub fn collect(
    live: &Path,
    spoof: Option<&Path>,
    attack_types: Option<&Path>,
) -> Result<Collected, EvalError> {
    let mut c = Collected::default();
    let (files, ignored) = files_under(live)?;
    if files.is_empty() {
        return Err(EvalError::NoImages(live.to_path_buf()));
    }
    c.ignored.extend(ignored);
    c.items.extend(files.into_iter().map(|path| Item {
        path,
        class: Class::BonaFide,
    }));

    let Some(spoof) = spoof else {
        return Ok(c);
    };
    let mapping = match attack_types {
        Some(p) => read_attack_types(p)?,
        None => BTreeMap::new(),
    };
    let mut used: BTreeSet<&str> = BTreeSet::new();
    let (files, ignored) = files_under(spoof)?;
    if files.is_empty() {
        return Err(EvalError::NoImages(spoof.to_path_buf()));
    }
    c.ignored.extend(ignored);
    for path in files {
        let rel = rel_key(&path, spoof);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let kind = if let Some((k, v)) = mapping.get_key_value(rel.as_str()) {
            used.insert(k.as_str());
            v.clone()
        } else if let Some((k, v)) = mapping.get_key_value(name.as_str()) {
            used.insert(k.as_str());
            v.clone()
        } else {
            match rel.split_once('/') {
                Some((folder, _)) => folder.to_string(),
                None => UNKNOWN_ATTACK.to_string(),
            }
        };
        c.items.push(Item {
            path,
            class: Class::Attack(kind),
        });
    }
    let unused: Vec<&str> = mapping
        .keys()
        .map(String::as_str)
        .filter(|k| !used.contains(k))
        .collect();
    if !unused.is_empty() {
        c.notes.push(format!(
            "attack-types entries that match no file in {}: {}",
            spoof.display(),
            unused.join(", ")
        ));
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attack_type_mapping_parses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("t.csv");
        std::fs::write(
            &p,
            "# x\nfile,attack_type\na.jpg,print\nsub/b.png, replay\n",
        )
        .expect("w");
        let m = read_attack_types(&p).expect("parse");
        assert_eq!(m.get("a.jpg").map(String::as_str), Some("print"));
        assert_eq!(m.get("sub/b.png").map(String::as_str), Some("replay"));
        std::fs::write(&p, "a.jpg\n").expect("w");
        assert!(matches!(
            read_attack_types(&p),
            Err(EvalError::AttackTypes { line: 1, .. })
        ));
        std::fs::write(&p, "a.jpg,print\na.jpg,mask\n").expect("w");
        assert!(read_attack_types(&p).is_err());
    }

    #[test]
    fn collects_classes_types_and_documentation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let live = dir.path().join("live");
        let spoof = dir.path().join("spoof");
        for p in [
            "live/b.jpg",
            "live/a.jpg",
            "live/sub/c.png",
            "live/.hidden.jpg",
            "live/.git/x.jpg",
            "live/README.md",
            "spoof/print/p1.jpg",
            "spoof/replay/r1.jpg",
            "spoof/loose.jpg",
            "spoof/mapped.jpg",
        ] {
            let p = dir.path().join(p);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, b"x").expect("write");
        }
        let map = dir.path().join("types.csv");
        std::fs::write(&map, "mapped.jpg,mask\nreplay/r1.jpg,screen\nnone.jpg,x\n").expect("w");

        let c = collect(&live, Some(&spoof), Some(&map)).expect("collect");
        let got: Vec<(String, Option<&str>)> = c
            .items
            .iter()
            .map(|i| (rel_key(&i.path, dir.path()), i.class.attack_type()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("live/a.jpg".to_string(), None),
                ("live/b.jpg".to_string(), None),
                ("live/sub/c.png".to_string(), None),
                ("spoof/loose.jpg".to_string(), Some(UNKNOWN_ATTACK)),
                ("spoof/mapped.jpg".to_string(), Some("mask")),
                ("spoof/print/p1.jpg".to_string(), Some("print")),
                ("spoof/replay/r1.jpg".to_string(), Some("screen")),
            ]
        );
        assert_eq!(c.ignored, vec![live.join("README.md")]);
        assert_eq!(c.notes.len(), 1, "{:?}", c.notes);
        assert!(c.notes[0].ends_with(": none.jpg"), "{}", c.notes[0]);
        assert_eq!(c.attack_per_type().get("print"), Some(&1));

        let empty = dir.path().join("empty");
        std::fs::create_dir_all(&empty).expect("mkdir");
        assert!(matches!(
            collect(&empty, None, None),
            Err(EvalError::NoImages(_))
        ));
    }
}
