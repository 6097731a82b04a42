//! The disclosure settings (R options `nfilter.*` and `datashield.privacyControlLevel`) with
//! dsBase's defaults. A profile may set any of them; `listDisclosureSettingsDS` reports them.

use serde::{Deserialize, Serialize};

/// dsBase's privacy control level: which families of functions are allowed at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrivacyControlLevel {
    Permissive,
    Banana,
    Avocado,
}

impl PrivacyControlLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            PrivacyControlLevel::Permissive => "permissive",
            PrivacyControlLevel::Banana => "banana",
            PrivacyControlLevel::Avocado => "avocado",
        }
    }
}

/// The settings, named as in R with `.` replaced by `_` (`nfilter.levels.density` →
/// `nfilter_levels_density`); in a profile file they keep R's names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DisclosureSettings {
    #[serde(rename = "nfilter.tab")]
    pub nfilter_tab: f64,
    #[serde(rename = "nfilter.subset")]
    pub nfilter_subset: f64,
    #[serde(rename = "nfilter.glm")]
    pub nfilter_glm: f64,
    #[serde(rename = "nfilter.string")]
    pub nfilter_string: f64,
    #[serde(rename = "nfilter.stringShort")]
    pub nfilter_string_short: f64,
    #[serde(rename = "nfilter.kNN")]
    pub nfilter_knn: f64,
    #[serde(rename = "nfilter.noise")]
    pub nfilter_noise: f64,
    #[serde(rename = "nfilter.levels.density")]
    pub nfilter_levels_density: f64,
    #[serde(rename = "nfilter.levels.max")]
    pub nfilter_levels_max: f64,
    #[serde(rename = "datashield.privacyControlLevel")]
    pub privacy_control_level: PrivacyControlLevel,
}

impl Default for DisclosureSettings {
    /// dsBase's defaults (its `.onLoad`).
    fn default() -> Self {
        DisclosureSettings {
            nfilter_tab: 3.0,
            nfilter_subset: 3.0,
            nfilter_glm: 0.33,
            nfilter_string: 80.0,
            nfilter_string_short: 20.0,
            nfilter_knn: 3.0,
            nfilter_noise: 0.25,
            nfilter_levels_density: 0.33,
            nfilter_levels_max: 40.0,
            privacy_control_level: PrivacyControlLevel::Banana,
        }
    }
}

impl DisclosureSettings {
    /// Every setting must be a positive finite number; the count thresholds whole numbers.
    pub fn validate(&self) -> Result<(), String> {
        let counts = [
            ("nfilter.tab", self.nfilter_tab),
            ("nfilter.subset", self.nfilter_subset),
            ("nfilter.string", self.nfilter_string),
            ("nfilter.stringShort", self.nfilter_string_short),
            ("nfilter.kNN", self.nfilter_knn),
            ("nfilter.levels.max", self.nfilter_levels_max),
        ];
        let fractions = [
            ("nfilter.glm", self.nfilter_glm),
            ("nfilter.noise", self.nfilter_noise),
            ("nfilter.levels.density", self.nfilter_levels_density),
        ];
        for (name, value) in counts {
            if !(value.is_finite() && value >= 1.0 && value.fract() == 0.0) {
                return Err(format!(
                    "{name} must be a whole number of at least 1, not {value}"
                ));
            }
        }
        for (name, value) in fractions {
            if !(value.is_finite() && value > 0.0) {
                return Err(format!("{name} must be a positive number, not {value}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_names_are_r_option_names_and_defaults_fill_the_rest() {
        let settings: DisclosureSettings =
            serde_yaml::from_str("nfilter.tab: 5\ndatashield.privacyControlLevel: avocado\n")
                .unwrap();
        assert_eq!(settings.nfilter_tab, 5.0);
        assert_eq!(settings.nfilter_glm, 0.33);
        assert_eq!(settings.privacy_control_level, PrivacyControlLevel::Avocado);
        assert!(serde_yaml::from_str::<DisclosureSettings>("nfilter.tabs: 5\n").is_err());
    }

    #[test]
    fn validation_refuses_fractional_counts_and_non_positive_fractions() {
        assert!(DisclosureSettings::default().validate().is_ok());
        let half = DisclosureSettings {
            nfilter_tab: 2.5,
            ..Default::default()
        };
        assert!(half.validate().unwrap_err().contains("nfilter.tab"));
        let zero = DisclosureSettings {
            nfilter_glm: 0.0,
            ..Default::default()
        };
        assert!(zero.validate().unwrap_err().contains("nfilter.glm"));
    }
}
