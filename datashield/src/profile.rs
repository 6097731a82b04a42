//! A DataSHIELD profile: its name, the functions it allows (by kind) and its disclosure settings.
//! A profile file is YAML; leaving out `aggregate` or `assign` allows every implemented function
//! of that kind.

use std::path::Path;

use serde::Deserialize;

use crate::eval::{Method, MethodKind, MethodTable};
use crate::functions;
use crate::settings::DisclosureSettings;

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read the profile {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("the profile {path} is invalid: {message}")]
    Invalid { path: String, message: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    name: String,
    #[serde(default)]
    settings: DisclosureSettings,
    aggregate: Option<Vec<String>>,
    assign: Option<Vec<String>>,
}

/// A loaded profile.
#[derive(Clone, Debug)]
pub struct Profile {
    pub name: String,
    pub settings: DisclosureSettings,
    pub methods: MethodTable,
}

impl Profile {
    /// dsBase's defaults and every implemented function.
    pub fn default_named(name: &str) -> Profile {
        Profile {
            name: name.to_owned(),
            settings: DisclosureSettings::default(),
            methods: MethodTable::new(functions::builtins()),
        }
    }

    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Io {
            path: shown.clone(),
            source,
        })?;
        Profile::parse(&text).map_err(|message| ProfileError::Invalid {
            path: shown,
            message,
        })
    }

    pub fn parse(text: &str) -> Result<Profile, String> {
        let file: ProfileFile = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        let name_ok = !file.name.is_empty()
            && file.name.len() <= 64
            && file
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !name_ok {
            return Err(format!(
                "'{}' is not a valid profile name (letters, digits, '_', '-', '.')",
                file.name
            ));
        }
        file.settings.validate()?;
        let builtins = functions::builtins();
        let mut allowed: Vec<Method> = Vec::new();
        for (kind, listed) in [
            (MethodKind::Aggregate, &file.aggregate),
            (MethodKind::Assign, &file.assign),
        ] {
            let of_kind = builtins.iter().filter(|m| m.kind == kind);
            match listed {
                None => allowed.extend(of_kind),
                Some(names) => {
                    for name in names {
                        let method = of_kind.clone().find(|m| m.name == name).ok_or_else(|| {
                            format!("'{name}' is not an implemented {} function", kind.as_str())
                        })?;
                        allowed.push(*method);
                    }
                }
            }
        }
        Ok(Profile {
            name: file.name,
            settings: file.settings,
            methods: MethodTable::new(allowed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_lists_what_it_allows_and_refuses_what_does_not_exist() {
        let profile = Profile::parse(
            "name: strict\nsettings: {nfilter.tab: 10}\naggregate: [classDS]\nassign: []\n",
        )
        .unwrap();
        assert_eq!(profile.settings.nfilter_tab, 10.0);
        assert!(
            profile
                .methods
                .get(MethodKind::Aggregate, "classDS")
                .is_some()
        );
        assert_eq!(profile.methods.of_kind(MethodKind::Assign).count(), 0);
        assert!(
            Profile::parse("name: x\naggregate: [system]\n")
                .unwrap_err()
                .contains("'system' is not an implemented aggregate function")
        );
        assert!(
            Profile::parse("name: x\nsettings: {nfilter.tab: 0}\n")
                .unwrap_err()
                .contains("nfilter.tab")
        );
        assert!(
            Profile::parse("name: 'a b'\n")
                .unwrap_err()
                .contains("not a valid profile name")
        );
        assert!(Profile::parse("name: x\nextra: 1\n").is_err());
    }
}
